"""Progress bars where people wait (a run of many orders, a load sweep), with a total and the time left: tqdm's,
on the command line and in notebooks alike (``tqdm.auto`` picks the notebook's widget in a Jupyter kernel).

They show only where someone watches: on a terminal (standard error is a TTY; not in a CI log or a pipe), and in
a notebook run from a front end that can answer ``input()`` (JupyterLab, VS Code), not in one executed by
papermill or nbconvert, which never can (nbclient sends every cell with ``allow_stdin`` false), so no bar lands
in an executed notebook or its HTML copy. ``YAFDP_PROGRESS=1`` (or ``0``) shows (or hides) them anyway.
"""

from __future__ import annotations

import os
import sys

SETTING = "YAFDP_PROGRESS"


def showing_progress(stream=None) -> bool:
    """Whether a progress bar would be seen now: ``YAFDP_PROGRESS`` when set (``1``/``0``, ``true``/``false``,
    ``yes``/``no``, ``on``/``off``); else, in a Jupyter kernel, whether the cell running was sent by a front end
    that takes input; else whether ``stream`` (default standard error) is a terminal.

    Examples
    --------
    >>> import io
    >>> showing_progress(io.StringIO()) == (os.environ.get(SETTING, "") in ("1", "true", "yes", "on"))
    True
    """
    setting = os.environ.get(SETTING, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    kernel = _kernel()
    if kernel is not None:
        return _interactive(kernel)
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def _kernel():
    """The Jupyter kernel this code runs in, or None (IPython is never imported for the question)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None)


def _interactive(kernel) -> bool:
    """Whether the request the kernel executes came from a front end that takes input (``allow_stdin``):
    JupyterLab's and VS Code's do; papermill's and nbconvert's (nbclient) never do."""
    try:
        parent = kernel.get_parent()  # ipykernel 6 and later: the message being handled
    except Exception:  # an older or another kernel: say nothing rather than guess
        return False
    return bool((parent or {}).get("content", {}).get("allow_stdin", False))


def progress_bar(total: int | None, description: str, unit: str, *, show: bool | None = None):
    """A ``tqdm.auto`` bar of ``total`` ``unit``s (its rate and the time left follow), shown when ``show`` is
    True, or, when None, when :func:`showing_progress` says so; otherwise a bar that shows nothing and costs
    nothing (tqdm, which imports asyncio, is not even imported: a run's start stays as quick). In a notebook the
    bar goes once done (``leave=False``): the cell's output is what it computed; on a terminal its last state
    stays, with the total time. Call ``close()`` when done (or use it as a context manager).
    """
    if not (showing_progress() if show is None else show):
        return _Hidden()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=f" {unit}", unit_scale=False, leave=_kernel() is None,
                file=sys.stderr, dynamic_ncols=True)


class _Hidden:
    """The bar nobody sees: tqdm's methods the code calls, doing nothing (``disable`` is True, as on tqdm's)."""

    disable = True
    n = 0

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Hidden":
        return self

    def __exit__(self, *exc) -> None:
        pass
