"""Execute the workbook's notebooks with papermill into a build folder, with an HTML copy of each.

``make workbook`` calls :func:`run_workbook`; the tests call it too, so what CI proves is what users run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"


@dataclass(frozen=True)
class ExecutedNotebook:
    name: str
    notebook: Path
    html: Path
    seconds: float


def notebooks(notebooks_dir: Path = NOTEBOOKS_DIR, only: list[str] | None = None) -> list[Path]:
    """The workbook's chapters in course order (``01_…``, ``02_…``), optionally those whose name starts with one of ``only``."""
    found = sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.name.startswith(prefix) for prefix in only)]
    return found


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False) -> ExecutedNotebook:
    """Execute one notebook with papermill into ``out_dir/notebooks/`` and export it to ``out_dir/html/``.

    The notebook gets ``out_dir`` (absolute) as a parameter, so its figures land in ``out_dir/figures/``.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out_dir = Path(out_dir).resolve()
    executed = out_dir / "notebooks" / path.name
    html = out_dir / "html" / path.with_suffix(".html").name
    executed.parent.mkdir(parents=True, exist_ok=True)
    html.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    papermill.execute_notebook(
        str(path), str(executed),
        parameters={"out_dir": str(out_dir), **(parameters or {})},
        cwd=str(path.parent), kernel_name="python3", progress_bar=False, log_output=log_output,
    )
    seconds = time.perf_counter() - started
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html.write_text(body, encoding="utf-8")
    return ExecutedNotebook(path.stem, executed, html, seconds)


def run_workbook(out_dir: Path, parameters: dict | None = None, only: list[str] | None = None,
                 notebooks_dir: Path = NOTEBOOKS_DIR, echo=print) -> list[ExecutedNotebook]:
    """Execute every chapter in order; stop at the first one that fails (papermill says which cell)."""
    done = []
    for path in notebooks(notebooks_dir, only):
        echo(f"running {path.name} …")
        result = run_notebook(path, out_dir, parameters)
        echo(f"  wrote {result.notebook} and {result.html} ({result.seconds:.1f} s)")
        done.append(result)
    return done
