"""The Lambda package: the runtime core of ``yafdp`` that the handler imports, the catalog folder (its documents,
its handlers, its ``saga.py`` and the data that reads), the data files the runtime reads, and fastjsonschema and
jsonata.

The modules are found by following the imports (``modulefinder``) of the entry point, of every shipped service
module and of the catalog's own Python (handlers are imported by name from the catalog), so pandas, matplotlib
and the notebooks never ship. The zip is byte-for-byte reproducible, so redeploying unchanged code changes nothing.
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
from yafdp.catalog import load_catalog
from yafdp.shipped import DATA_DIR

BUNDLED = ("yafdp", "fastjsonschema", "jsonata")  # top-level packages shipped; boto3 comes with Lambda's runtime
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


ZIP_DATA_DIR = "yafdp/data"  # where the wheel has the shipped data too, so yafdp.shipped finds it alike
# The shipped data files (not the catalog's) the runtime reads: the PutEvents entry and request size limits
# (yafdp.runtime.envelope, on every publish). tests/integration/test_lambda_package.py runs the package alone and
# fails on a file read at run time that is missing here, or one carried here that nothing opens.
RUNTIME_DATA_FILES = ("quotas.json",)


def catalog_files(catalog_dir: str | Path | None = None) -> dict[str, Path]:
    """The catalog files a function reads, ``{name in the zip: file}``, under ``data/``: what the catalog is made
    of (:meth:`yafdp.catalog.code.CatalogCode.files`: ``bus.json``, ``services/<name>.json``, the handlers in
    ``services/``, ``saga.py`` and the data files it names) less ``invariants.py``, which only the checker reads.
    Nothing else of the folder, so a stray ``.private/creds.json`` next to the catalog never ships.

    Examples
    --------
    >>> sorted(catalog_files())[:4]
    ['yafdp/data/bus.json', 'yafdp/data/marketplace.json', 'yafdp/data/saga.py', 'yafdp/data/services/delivery.json']
    """
    files = load_catalog(catalog_dir).code.files()
    return {f"{ZIP_DATA_DIR}/{name}": path for name, path in files.items() if name != "invariants.py"}


def package_files(catalog_dir: str | Path | None = None) -> dict[str, Path]:
    """What goes into the zip: ``{name in the zip: file}``. The catalog lands in ``yafdp/data/``, where
    :mod:`yafdp.shipped` finds it, as in an installed wheel (see :func:`catalog_files` for which files), beside the
    shipped :data:`RUNTIME_DATA_FILES`.

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
    catalog = catalog_files(catalog_dir)
    for script in [*sorted((root / "services").glob("*.py")), *(p for p in catalog.values() if p.suffix == ".py")]:
        finder.run_script(str(script))
    files: dict[str, Path] = {}
    for name, module in finder.modules.items():
        if name.split(".")[0] in BUNDLED and module.__file__:
            path = Path(module.__file__).resolve()
            top = Path(__import__(name.split(".")[0]).__file__).resolve().parent
            files[f"{top.name}/{path.relative_to(top).as_posix()}"] = path
    for script in [root / "backends" / "aws" / "lambda_handler.py", *(root / "services").glob("*.py")]:
        files[script.relative_to(root.parent).as_posix()] = script
    files.update(catalog)
    files.update({f"{ZIP_DATA_DIR}/{name}": DATA_DIR / name for name in RUNTIME_DATA_FILES})
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
