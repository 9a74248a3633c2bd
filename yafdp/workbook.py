"""Execute the workbook's notebooks with papermill into a build folder, with an HTML copy of each.

``make workbook`` calls :func:`run_workbook`; the tests call it too, so what CI proves is what users run.
The HTML copies are self-contained for reading offline: they load no remote script (no require.js, MathJax,
Mermaid or widget manager from a CDN), and every diagram in them is an image the notebook drew.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from yafdp.errors import YafdpError
from yafdp.shipped import notebooks_dir
from yafdp.site import write_site

NOTEBOOKS_DIR = notebooks_dir()

# The kernel papermill starts logs a warning about its TCP transport on every start; it says nothing about
# the notebook, so the workbook starts kernels with only errors logged.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
# How long a kernel may take to start (papermill's default is 60 s): a chapter on a busy machine (the workbook
# runs one more than the cores; CI runners are shared) is slow, not broken.
KERNEL_START_SECONDS = 600

# nbconvert's lab template with every block that loads a script from the network left empty, and every image with its
# one-line description (alt text: a figure's title and axes, yafdp.analysis.figures.alt_text).
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block data_png scoped -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}"
{%- set width=output | get_metadata('width', 'image/png') -%}
{%- if width is not none %} width={{ width | escape_html }}{%- endif %}
{%- set height=output | get_metadata('height', 'image/png') -%}
{%- if height is not none %} height={{ height | escape_html }}{%- endif %}
 alt="{{ ((output | get_metadata('alt', 'image/png')) or 'a figure (no description)') | escape_html }}">
</div>
{%- endblock data_png -%}
"""


@dataclass(frozen=True)
class ExecutedNotebook:
    """One executed chapter: its name, the executed notebook, its HTML copy, how long it took (wall seconds) and
    the CPU seconds it used (this process's and its kernel's: it depends much less than the wall time on what else
    the machine runs, though a busy machine inflates it too)."""

    name: str
    notebook: Path
    html: Path
    seconds: float
    cpu_seconds: float = 0.0


def cpu_seconds() -> float:
    """CPU seconds (user and system) used so far by this process and by the children it has waited for (a
    chapter's kernel, once it exited)."""
    used = os.times()
    return used.user + used.system + used.children_user + used.children_system


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


# What a build folder holds: the executed notebooks, their HTML copies, the figures, the chapters' runs, and the
# teacher's copy (a build of its own, build/solutions, beside the learner's).
BUILD_ENTRIES = ("notebooks", "html", "figures", "runs", "solutions")


def check_build_folder(out: Path, force: bool = False, option: str = "--out") -> Path:
    """``out`` if the workbook may write its build there: a folder (or a path to make one) that is no run folder
    (the workbook holds no run folder's lock, so it never writes into one, even with ``force``) and holds
    nothing but an earlier build's :data:`BUILD_ENTRIES`, unless ``force``.

    Raises :class:`~yafdp.errors.RefusedError` naming ``option`` and what is in the way.
    """
    from yafdp.errors import RefusedError
    from yafdp.runs import folder

    out = folder.check_out(Path(out), option)
    if folder.is_run_folder(out):
        raise RefusedError(f"{option} {out} is a run folder: the workbook writes its build into a folder of its own; "
                           f"choose another {option}")
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in BUILD_ENTRIES) if out.is_dir() else []
    if others and not force:
        named = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise RefusedError(f"{option} {out} holds what no workbook build holds ({named}): pass --force to write the "
                           f"build there anyway, or choose another {option}")
    return out


class NotebookFailed(YafdpError):
    """One or more chapters failed: which, each with the cell and error papermill reported (one line each);
    ``failed`` names the chapters."""

    def __init__(self, message: str, failed: list[str] | None = None):
        super().__init__(message)
        self.failed = failed or []


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False) -> ExecutedNotebook:
    """Execute one notebook with papermill into ``out_dir/notebooks/`` and export it to ``out_dir/html/``.

    The notebook runs in ``out_dir`` and gets ``out_dir="."`` as a parameter, so its figures land in
    ``out_dir/figures/`` and neither the executed notebook nor its HTML copy shows the path of the machine that built
    it; and it gets
    of ``parameters`` those its ``parameters`` cell declares (e.g. ``{"solutions": True}``: the exercises are
    answered by their worked solutions, the teacher's copy; ``{"backend": "moto"}`` where a chapter has one).

    Raises :class:`NotebookFailed` naming the chapter, the cell and the error when a cell fails; the executed
    notebook and its HTML copy are still written, up to and including the failing cell.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir = Path(out_dir).resolve()
    executed = out_dir / "notebooks" / path.name
    html = out_dir / "html" / path.with_suffix(".html").name
    executed.parent.mkdir(parents=True, exist_ok=True)
    html.parent.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    declared = papermill.inspect_notebook(str(path))
    given = {"out_dir": ".", **{k: v for k, v in (parameters or {}).items() if k in declared}}
    executed.unlink(missing_ok=True)  # an earlier build's copy is not left standing for this one
    failure = None
    try:  # written once, at the end (or at the failing cell), not after every cell: seconds of JSON for a long chapter
        notebook = papermill.execute_notebook(str(path), str(executed), parameters=given, cwd=str(out_dir),
                                              kernel_name="python3", progress_bar=False, log_output=log_output,
                                              request_save_on_cell_execute=False, extra_arguments=KERNEL_ARGUMENTS,
                                              start_timeout=KERNEL_START_SECONDS)
    except PapermillExecutionError as exc:
        failure = NotebookFailed(f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
        notebook = nbformat.read(executed, as_version=4)
    recorded = notebook.metadata.get("papermill", {})  # papermill records where it read and wrote: the builder's paths
    recorded.update({k: f"notebooks/{path.name}" for k in ("input_path", "output_path") if k in recorded})
    nbformat.write(notebook, executed)
    body, _ = html_exporter().from_notebook_node(notebook)
    html.write_text(body, encoding="utf-8")
    if failure is not None:
        raise failure
    return ExecutedNotebook(path.stem, executed, html, time.perf_counter() - started, cpu_seconds() - cpu_started)


def _run_chapter(path: Path, out_dir: Path, parameters: dict | None) -> ExecutedNotebook:
    """:func:`run_notebook` in a worker process: any failure comes back as a :class:`NotebookFailed` (which
    pickles), naming the chapter."""
    try:
        return run_notebook(path, out_dir, parameters)
    except NotebookFailed:
        raise
    except Exception as exc:  # e.g. the kernel died: still one line naming the chapter
        raise NotebookFailed(f"{path.name} failed: {type(exc).__name__}: {exc}") from None


def run_workbook(out_dir: Path, parameters: dict | None = None, only: list[str] | None = None,
                 notebooks_dir: Path = NOTEBOOKS_DIR, echo=print, jobs: int | None = None) -> list[ExecutedNotebook]:
    """Execute every chapter (or those of ``only``), ``jobs`` at a time (default: :func:`default_jobs`), and return
    them in course order; then write the course's index page, ``out_dir/html/index.html``, and the links between
    the chapters' HTML copies (:func:`yafdp.site.write_site`).

    The chapters do not read each other's output, so they run side by side, each in a worker process of its
    own (papermill changes the working directory of the process it runs in), the longest first (as an earlier build
    in ``out_dir`` took them; in a first build, from the last chapter back). A chapter that
    fails does not stop the others: every chapter runs, and then :class:`NotebookFailed` lists each one that failed
    with its cell and error, one line each. An interrupt stops the chapters still running and those not started
    (``KeyboardInterrupt``).
    """
    out_dir = Path(out_dir).resolve()
    chapters, failed = notebooks(notebooks_dir, only), []
    try:
        return _execute(out_dir, chapters, parameters, echo, jobs)
    except NotebookFailed as exc:
        failed = [Path(name).stem for name in exc.failed]
        raise
    finally:  # the course's index, whatever failed: a failed chapter is marked, and its copy left out of the links
        index = write_site(out_dir / "html", notebooks(notebooks_dir), ran=[p.stem for p in chapters], failed=failed)
        echo(f"  wrote {index}: the course's chapters, linked")


def _execute(out_dir: Path, chapters: list[Path], parameters: dict | None, echo, jobs: int | None) -> list[ExecutedNotebook]:
    """Execute ``chapters``, ``jobs`` at a time, and return them in course order (see :func:`run_workbook`)."""
    jobs = max(1, min(jobs or default_jobs(), len(chapters) or 1))
    done: dict[Path, ExecutedNotebook] = {}
    failed: dict[Path, NotebookFailed] = {}
    if jobs == 1:
        for path in chapters:
            echo(f"running {path.name} …")
            try:
                result = _run_chapter(path, out_dir, parameters)
            except NotebookFailed as exc:
                echo(f"  {exc}")
                failed[path] = exc
                continue
            echo(f"  wrote {result.notebook} and {result.html} ({_took(result)})")
            done[path] = result
    else:
        # Longest first (as the last workbook run measured them, when it left its notebooks), so the long ones overlap;
        # a chapter with no such time (a first build) from the last back, as chapters 05 to 09 run the course's
        # largest workloads (course order would start chapter 09 seventh, and end the build with it alone).
        ordered = sorted(reversed(chapters), key=lambda p: -_last_seconds(out_dir / "notebooks" / p.name))
        finished: queue.Queue = queue.Queue()
        echo(f"running {len(chapters)} chapter(s), {jobs} at a time …")
        pool = _worker_pool(jobs)
        try:
            for path in ordered:
                pool.apply_async(_run_chapter, (path, out_dir, parameters),
                                 callback=lambda result, path=path: finished.put((path, result, None)),
                                 error_callback=lambda exc, path=path: finished.put((path, None, exc)))
            while len(done) + len(failed) < len(chapters):
                path, result, failure = finished.get()
                if failure is not None:
                    failed[path] = failure if isinstance(failure, NotebookFailed) else NotebookFailed(
                        f"{path.name} failed: {type(failure).__name__}: {failure}")
                    echo(f"  {failed[path]}")
                    continue
                echo(f"  {path.name}: wrote {result.notebook} and {result.html} ({_took(result)})")
                done[path] = result
            pool.close()
        finally:
            pool.terminate()  # an interrupt: what still runs stops (each kernel exits with its worker)
            pool.join()
    if failed:
        raise NotebookFailed("\n".join(str(failed[path]) for path in chapters if path in failed),
                             failed=[path.name for path in chapters if path in failed])
    return [done[path] for path in chapters]


def default_jobs() -> int:
    """How many chapters run at once by default: one more than the cores. A chapter also waits (its kernel starting
    and stopping, moto's HTTP and queue polls in chapter 05), and the chapter beside it uses that time; more would
    only share the cores."""
    return (os.cpu_count() or 1) + 1


def _worker_pool(jobs: int):
    """``jobs`` worker processes for the chapters, each a fresh process (never a fork of this one, whose threads
    may hold locks). Where Python has a fork server, its server imports papermill and nbconvert once (seconds
    of CPU: nbformat's jsonschema alone takes over a second) and each worker starts as a fork of it; elsewhere
    each worker is a new interpreter that imports them itself."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["papermill", "nbconvert", "yafdp.workbook"])
    else:
        context = multiprocessing.get_context("spawn")
    return context.Pool(jobs)


def _took(result: ExecutedNotebook) -> str:
    return f"{result.seconds:.1f} s, {result.cpu_seconds:.1f} s of CPU"


def _last_seconds(executed: Path) -> float:
    """How long an executed notebook's cells took (papermill's metadata), 0 when it is not there or unreadable."""
    try:
        return float(json.loads(executed.read_text(encoding="utf-8"))["metadata"]["papermill"]["duration"] or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
