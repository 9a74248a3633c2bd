"""The Lambda package: the runtime core of ``yafdp`` that the handler imports, the catalog, and fastjsonschema.

The modules are found by following the handler's imports (``modulefinder``), plus every service module
(handlers are imported by name from the catalog), so pandas, matplotlib and the notebooks never ship. The
zip is byte-for-byte reproducible, so redeploying unchanged code changes nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import modulefinder
import sys
import sysconfig
import zipfile
from pathlib import Path

import yafdp
from yafdp.shipped import DATA_DIR

BUNDLED = ("yafdp", "fastjsonschema")  # top-level packages shipped; boto3 comes with Lambda's runtime
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


CATALOG_FILES = ("bus.json", "marketplace.json")  # plus services/<name>.json: what the function loads
ZIP_DATA_DIR = "yafdp/data"  # where the wheel has the shipped data too, so yafdp.shipped finds it alike


def catalog_files(catalog_dir: str | Path | None = None) -> dict[str, Path]:
    """The catalog files a function reads, ``{name in the zip: file}``: ``bus.json``, ``marketplace.json`` and
    ``services/<name>.json``, and nothing else of the folder (no hidden files, no other data, no subfolders
    of ``services/``), so a stray ``.private/creds.json`` next to the catalog never ships.

    Examples
    --------
    >>> sorted(catalog_files())[:3]
    ['yafdp/data/bus.json', 'yafdp/data/marketplace.json', 'yafdp/data/services/delivery.json']
    """
    data = Path(catalog_dir) if catalog_dir is not None else DATA_DIR
    files = {f"{ZIP_DATA_DIR}/{name}": data / name for name in CATALOG_FILES if (data / name).is_file()}
    for path in sorted((data / "services").glob("*.json")):
        if path.is_file() and not path.name.startswith("."):
            files[f"{ZIP_DATA_DIR}/services/{path.name}"] = path
    return files


def package_files(catalog_dir: str | Path | None = None) -> dict[str, Path]:
    """What goes into the zip: ``{name in the zip: file}``. The catalog lands in ``yafdp/data/``, where
    :mod:`yafdp.shipped` finds it, as in an installed wheel (see :func:`catalog_files` for which files).

    Examples
    --------
    >>> files = package_files()
    >>> "yafdp/backends/aws/lambda_handler.py" in files and "yafdp/data/bus.json" in files
    True
    >>> any(name.startswith(("pandas/", "matplotlib/")) for name in files)
    False
    """
    root = Path(yafdp.__file__).resolve().parent
    finder = modulefinder.ModuleFinder(path=_search_path(root), excludes=["boto3", "botocore"])
    finder.run_script(str(root / "backends" / "aws" / "lambda_handler.py"))
    for service in sorted((root / "services").glob("*.py")):
        finder.run_script(str(service))
    files: dict[str, Path] = {}
    for name, module in finder.modules.items():
        if name.split(".")[0] in BUNDLED and module.__file__:
            path = Path(module.__file__).resolve()
            top = Path(__import__(name.split(".")[0]).__file__).resolve().parent
            files[f"{top.name}/{path.relative_to(top).as_posix()}"] = path
    for script in [root / "backends" / "aws" / "lambda_handler.py", *(root / "services").glob("*.py")]:
        files[script.relative_to(root.parent).as_posix()] = script
    files.update(catalog_files(catalog_dir))
    return dict(sorted(files.items()))


def _search_path(root: Path) -> list[str]:
    """Where ``modulefinder`` looks for the modules the handler imports: first the folder that holds the
    ``yafdp`` package ``root`` (an editable install, as ``make`` makes, is found through an import hook that
    ``modulefinder`` does not use: without it only the scripts shipped by name would ship), then ``sys.path``
    without the standard library (none of it ships, and following its imports was nearly all the time).
    """
    stdlib = {Path(sysconfig.get_path(name)).resolve() for name in ("stdlib", "platstdlib")}
    kept = [str(root.parent)]
    for entry in sys.path:
        folder = Path(entry or ".").resolve()
        if folder in stdlib or (folder.name == "lib-dynload" and folder.parent in stdlib) or folder.suffix == ".zip":
            continue  # the standard library, its extension modules, the zipped standard library
        if str(folder) not in kept:
            kept.append(str(folder))
    return kept


def build_package(catalog_dir: str | Path | None = None) -> bytes:
    """The Lambda deployment package (a zip) as bytes, identical for identical sources (built once per
    process and catalog).

    Examples
    --------
    >>> build_package() == build_package()
    True
    """
    return _zip(str(Path(catalog_dir).resolve()) if catalog_dir is not None else None)


@functools.lru_cache(maxsize=8)
def _zip(catalog_dir: str | None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_files(catalog_dir).items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def code_sha256(package: bytes) -> str:
    """The package's hash as Lambda reports it (``CodeSha256``: base64 of the SHA-256).

    Examples
    --------
    >>> code_sha256(b"")
    '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='
    """
    return base64.b64encode(hashlib.sha256(package).digest()).decode()
