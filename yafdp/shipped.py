"""Where the files yafdp ships are: the catalog and everything derived from it (``data/``: the services, the
marketplace, latency profiles, quotas, prices) and the workbook (``notebooks/``). This module is the one place
that says so; every reader of those files takes its folder from here.

The repository keeps both folders at its top level. A built wheel (and the Lambda package) carries them inside
the package, as ``yafdp/data/`` and ``yafdp/notebooks/``: ``pyproject.toml`` maps the two folders there
(``[tool.setuptools.package-dir]``), and they are found with :mod:`importlib.resources`. A source checkout (the
editable install ``make`` makes) has no such folders in the package, and reads the repository's own.

Examples
--------
>>> (DATA_DIR / "bus.json").is_file() and (DATA_DIR / "services").is_dir()
True
>>> sorted(p.name for p in notebooks_dir().glob("01_*.ipynb"))
['01_identify_events.ipynb']
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from yafdp.errors import ConfigurationError

PACKAGE_DIR = Path(__file__).resolve().parent
# The repository that holds the package, when the package is a source checkout (None once installed from a wheel).
REPOSITORY: Path | None = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None


def shipped_folder(name: str) -> Path:
    """The folder ``name`` (``"data"`` or ``"notebooks"``) as shipped: ``yafdp/<name>/`` inside an installed
    package, else the repository's top-level ``<name>/``.

    Raises :class:`~yafdp.errors.ConfigurationError` when neither exists (a package installed without its data,
    or imported from a zip archive, where the files are not folders on disk).
    """
    packaged = files("yafdp") / name
    if packaged.is_dir():
        if not isinstance(packaged, Path):  # e.g. a zipimport: the loaders need real files to glob and read
            raise ConfigurationError(f"yafdp's shipped {name}/ is inside {packaged}; install yafdp unpacked "
                                     "(pip install) to use it")
        return packaged
    beside = PACKAGE_DIR.parent / name  # a source checkout: the repository's top-level folder
    if beside.is_dir():
        return beside
    raise ConfigurationError(f"yafdp's shipped {name}/ is missing: neither {PACKAGE_DIR / name} (an installed "
                             f"wheel) nor {beside} (a source checkout) exists; reinstall yafdp")


DATA_DIR = shipped_folder("data")  # the catalog: bus.json, services/, marketplace.json
QUOTAS_FILE = DATA_DIR / "quotas.json"  # AWS's quotas, each cited
PRICES_FILE = DATA_DIR / "prices.json"  # AWS's prices, each cited
PROFILES_DIR = DATA_DIR / "latency"  # latency profiles, <name>.json


def notebooks_dir() -> Path:
    """The workbook's chapters (``NN_name.ipynb``), as shipped. A function, not a constant: the Lambda package
    ships the catalog and no notebooks."""
    return shipped_folder("notebooks")
