"""yafdp's optional parts (pip "extras") and what a command says when one is missing.

The core (the catalog, the pattern engine, the local bus, the checker, the command line, the trace export) needs
neither JupyterLab nor moto (it has botocore, for the service model of EventBridge Scheduler's requests).
``pip install 'yafdp[workbook]'`` adds the notebooks' libraries, ``'yafdp[aws]'`` boto3 and moto (the ``moto`` and
``aws`` backends), ``'yafdp[dev]'`` both and the test tools (``pyproject.toml``).
"""

from __future__ import annotations

import importlib.util
import sys

# The modules yafdp imports from each extra, by import name (tests/integration/test_packaging.py checks that each
# comes with the extra named here, and that the core imports none of them).
EXTRA_MODULES = {
    "workbook": ("IPython", "ipykernel", "ipywidgets", "jinja2", "jupyterlab", "matplotlib", "nbclient", "nbconvert",
                 "nbformat", "pandas", "papermill", "psutil", "traitlets"),
    "aws": ("boto3", "cbor2", "moto"),  # botocore is the core's (the local EventBridge Scheduler's request model)
}


def extra_of(module: str | None) -> str | None:
    """The extra that brings ``module`` (a dotted name: its top-level package counts), or None for one no extra
    brings.

    Examples
    --------
    >>> extra_of("pandas.core.frame"), extra_of("moto.server"), extra_of("json")
    ('workbook', 'aws', None)
    """
    top = (module or "").split(".")[0]
    return next((extra for extra, modules in EXTRA_MODULES.items() if top in modules), None)


def require(extra: str) -> None:
    """Check that every module of ``extra`` is installed, importing none of them (a notebook's kernel imports them
    in another process, where a missing one would be a failed cell, not a line saying what to install).

    Raises :class:`ModuleNotFoundError` naming the first missing module (:func:`missing_extra_message` says it).
    """
    for module in EXTRA_MODULES[extra]:
        missing = sys.modules[module] is None if module in sys.modules else importlib.util.find_spec(module) is None
        if missing:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """What to say, in one line, for a module an extra brings that is not installed; None if no extra brings it.

    Examples
    --------
    >>> missing_extra_message(ModuleNotFoundError("No module named 'papermill'", name="papermill"))
    "needs papermill, which comes with yafdp's workbook extra: pip install 'yafdp[workbook]'"
    """
    extra = extra_of(error.name)
    if extra is None:
        return None
    return f"needs {error.name.split('.')[0]}, which comes with yafdp's {extra} extra: pip install 'yafdp[{extra}]'"
