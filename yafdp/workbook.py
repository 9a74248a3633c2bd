"""Execute the workbook's notebooks with papermill into a build folder, with an HTML copy of each.

``make workbook`` calls :func:`run_workbook`; the tests call it too, so what CI proves is what users run.
The HTML copies are self-contained for reading offline: they load no remote script (no require.js, MathJax,
Mermaid or widget manager from a CDN), and every diagram in them is an image the notebook drew.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from yafdp.analysis.notebook import REPOSITORY

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
