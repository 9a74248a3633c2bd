"""Execute the workbook's notebooks with papermill into a build folder, with an HTML copy of each.

``make workbook`` calls :func:`run_workbook`; the tests call it too, so what CI proves is what users run.
The HTML copies are self-contained for reading offline: they load no remote script (no require.js, MathJax,
Mermaid or widget manager from a CDN), and every diagram in them is an image the notebook drew.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from yafdp.analysis.notebook import REPOSITORY
from yafdp.errors import YafdpError

NOTEBOOKS_DIR = REPOSITORY / "notebooks"

# The kernel papermill starts logs a warning about its TCP transport on every start; it says nothing about
# the notebook, so the workbook starts kernels with only errors logged.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]

# nbconvert's lab template with every block that loads a script from the network left empty.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


@dataclass(frozen=True)
class ExecutedNotebook:
    """One executed chapter: its name, the executed notebook, its HTML copy and how long it took."""

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


# What the HTML copies show of an output, first found first: no widget view or script (they would need the
# network), so an output that has a widget shows its static twin (text/html) instead.
OFFLINE_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg", "text/latex",
                    "text/plain"]


def html_exporter():
    """nbconvert's HTML exporter (lab template) with no remote script: the copies read the same offline."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    return HTMLExporter(config=Config({"NbConvertBase": {"display_data_priority": OFFLINE_PRIORITY}}),
                        extra_loaders=[DictLoader({"yafdp_offline.html.j2": OFFLINE_TEMPLATE})],
                        template_file="yafdp_offline.html.j2")


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False) -> ExecutedNotebook:
    """Execute one notebook with papermill into ``out_dir/notebooks/`` and export it to ``out_dir/html/``.

    The notebook gets ``out_dir`` (absolute) as a parameter, so its figures land in ``out_dir/figures/``.
    With ``parameters={"solutions": True}`` the exercises are answered by their worked solutions (the
    teacher's copy).
    """
    import nbformat
    import papermill

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
        extra_arguments=KERNEL_ARGUMENTS,
    )
    seconds = time.perf_counter() - started
    body, _ = html_exporter().from_notebook_node(nbformat.read(executed, as_version=4))
    html.write_text(body, encoding="utf-8")
    return ExecutedNotebook(path.stem, executed, html, seconds)


class NotebookFailed(YafdpError):
    """A chapter failed: which one, and the cell and error papermill reported."""


def run_workbook(out_dir: Path, parameters: dict | None = None, only: list[str] | None = None,
                 notebooks_dir: Path = NOTEBOOKS_DIR, echo=print, jobs: int | None = None) -> list[ExecutedNotebook]:
    """Execute every chapter (or those of ``only``), ``jobs`` at a time (default: one per core), and return
    them in course order. The chapters do not read each other's output, so they can run side by side; the
    longest start first. The first failure stops what has not started and raises :class:`NotebookFailed`."""
    from papermill.exceptions import PapermillExecutionError

    chapters = notebooks(notebooks_dir, only)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chapters) or 1))
    # Longest first (as the last workbook run measured them, when it left its notebooks), so the long ones overlap.
    ordered = sorted(chapters, key=lambda p: -_last_seconds(Path(out_dir).resolve() / "notebooks" / p.name))
    done: dict[Path, ExecutedNotebook] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {}
        for path in ordered:
            futures[pool.submit(run_notebook, path, out_dir, parameters)] = path
        echo(f"running {len(chapters)} chapter(s), {jobs} at a time …")
        for future in as_completed(futures):
            path = futures[future]
            try:
                result = future.result()
            except PapermillExecutionError as exc:
                for other in futures:
                    other.cancel()
                raise NotebookFailed(f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}") from None
            echo(f"  {path.name}: wrote {result.notebook} and {result.html} ({result.seconds:.1f} s)")
            done[path] = result
    return [done[path] for path in chapters]


def _last_seconds(executed: Path) -> float:
    """How long an executed notebook's cells took (papermill's metadata), 0 when it is not there or unreadable."""
    try:
        return float(json.loads(executed.read_text(encoding="utf-8"))["metadata"]["papermill"]["duration"] or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
