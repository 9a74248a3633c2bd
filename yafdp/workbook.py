"""Execute the workbook's notebooks with papermill into a build folder, with an HTML copy of each.

``make workbook`` calls :func:`run_workbook`; the tests call it too, so what CI proves is what users run.
The HTML copies are self-contained for reading offline: they load no remote script (no require.js, MathJax,
Mermaid or widget manager from a CDN), and every diagram in them is an image the notebook drew.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from yafdp.errors import YafdpError
from yafdp.interrupt import signals_held
from yafdp.shipped import notebooks_dir
from yafdp.site import write_site

NOTEBOOKS_DIR = notebooks_dir()

# A kernel's warnings at start (over TCP it warned about the transport on every start) say nothing about the
# notebook, so the workbook starts kernels with only errors logged. Nor does a chapter's kernel keep an IPython
# history: a build's cells are not the reader's input, and ten kernels at once would share one history database.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR", "--HistoryManager.enabled=False"]
# How a chapter's kernel is stopped once its last cell ran and papermill has every output: at once (nbclient's
# "immediate": the kernel is killed), not "graceful". A graceful exit runs IPython's atexit reset and the interpreter's
# finalization, a full garbage collection and teardown of everything the chapter built (0.4-0.6 s of CPU for chapter 01,
# 1.1-1.6 s for chapter 05 and its moto server), for nothing: a chapter's files are closed when its cells end (a
# run's lifecycle closes its run.db, figures are written whole), and the kernel's process ends with nothing to keep.
KERNEL_SHUTDOWN = "immediate"
# How long a kernel may take to start (papermill's default is 60 s): a chapter on a busy machine (the workbook
# runs one more than the cores; CI runners are shared) is slow, not broken.
KERNEL_START_SECONDS = 600

# The longest path a kernel's Unix domain socket is given, in bytes: sun_path holds 108 bytes on Linux
# (https://man7.org/linux/man-pages/man7/unix.7.html) and 104 on macOS, a NUL ending each.
SOCKET_PATH_BYTES = 103

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


@functools.cache
def html_exporter():
    """nbconvert's HTML exporter (lab template) with no remote script: the copies read the same offline. One per
    process: it compiles its templates the first time it exports (a fifth of a second)."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    return HTMLExporter(config=Config({"NbConvertBase": {"display_data_priority": OFFLINE_PRIORITY}}),
                        extra_loaders=[DictLoader({"yafdp_offline.html.j2": OFFLINE_TEMPLATE})],
                        template_file="yafdp_offline.html.j2")


# The build's folders that several chapters write into: a chapter replaces its own entries in them, one by one.
SHARED_FOLDERS = ("notebooks", "html", "figures", "runs")
# Where each chapter runs and writes, beside the build it will replace: ``<out>/.building/<chapter>/`` (a folder
# on the same file system, so its files are renamed into place, never copied). Removed at the end of a build; a
# build killed outright (SIGKILL) may leave it, and the next one empties it.
STAGING = ".building"
# What a build folder holds: the executed notebooks, their HTML copies, the figures, the chapters' runs, the
# teacher's copy (a build of its own, build/solutions, beside the learner's) and the chapters being built.
BUILD_ENTRIES = (*SHARED_FOLDERS, "solutions", STAGING)


def is_build(folder: Path) -> bool:
    """Whether ``folder`` is a workbook build: a folder (no symbolic link) with ``notebooks/`` or ``html/`` that
    holds nothing but :data:`BUILD_ENTRIES` and builds of their own (``make workbook CATALOG=DIR`` builds into
    ``build/<DIR's name>/``, inside the learner's build)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or not any((folder / name).is_dir() for name in ("notebooks", "html")):
        return False
    return all(entry.name in BUILD_ENTRIES or is_build(entry) for entry in folder.iterdir())


def check_build_folder(out: Path, force: bool = False, option: str = "--out") -> Path:
    """``out`` if the workbook may write its build there: a folder (or a path to make one) that is no run folder
    (the workbook holds no run folder's lock, so it never writes into one, even with ``force``) and holds
    nothing but an earlier build's :data:`BUILD_ENTRIES` and other builds (:func:`is_build`), unless ``force``.

    Raises :class:`~yafdp.errors.RefusedError` naming ``option`` and what is in the way.
    """
    from yafdp.errors import RefusedError
    from yafdp.runs import folder

    out = folder.check_out(Path(out), option, "the build")
    if folder.is_run_folder(out):
        raise RefusedError(f"{option} {out} is a run folder: the workbook writes its build into a folder of its own; "
                           f"choose another {option}")
    others = sorted(entry.name for entry in out.iterdir()
                    if entry.name not in BUILD_ENTRIES and not is_build(entry)) if out.is_dir() else []
    if others and not force:
        named = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise RefusedError(f"{option} {out} holds what no workbook build holds ({named}): pass --force to write the "
                           f"build there anyway, or choose another {option}")
    return out


@functools.cache
def kernel_manager_class(socket_root: str | None = None):
    """jupyter_client's kernel manager, except that it stops a chapter's kernel without interrupting it first.

    jupyter_client's ``shutdown_kernel`` first interrupts the kernel (SIGINT), then asks it to shut down (or, with
    ``now``, kills it: :data:`KERNEL_SHUTDOWN`). papermill stops a kernel right after its last request
    (``kernel_info``) is answered: the interrupt often landed while the kernel was still in that request's handler,
    and the kernel logged ``ERROR | KeyboardInterrupt caught in kernel`` on a good build. A chapter's kernel is idle
    when papermill stops it, or stopped whatever it runs (a kill, or a shutdown request and then a kill once the
    shutdown wait ends), so the interrupt is left out; every other interrupt (``interrupt_kernel``) is sent as
    before.

    Nor does it give the kernel TCP ports: the kernel binds Unix domain sockets (ZeroMQ's ``ipc`` transport) in a
    folder of its own, its ``kernel_folder`` (``tempfile.mkdtemp``, mode 0700), which also holds its connection file
    and is removed when the kernel is stopped. jupyter_client picks a TCP kernel's five ports by binding port 0 and
    letting each go again before the kernel binds it: two chapters starting their kernels at once could be handed the
    same port, and the second kernel died before it answered (``zmq.error.ZMQError: Address already in use``, seen in
    a build of two chapters at once). A socket path nobody else was given cannot collide. The folder is made in
    ``socket_root``, or in the system's temporary folder when None: a build passes a folder of its own and removes it
    when it ends, so a chapter it killed leaves nothing behind (jupyter_client's own connection file, ``tmp*.json``
    in the temporary folder, was left by every killed chapter). Where that path is too long for a socket's
    (:data:`SOCKET_PATH_BYTES`), the kernel listens on TCP, as jupyter_client's do."""
    from jupyter_client.localinterfaces import localhost
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class ChapterKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
        kernel_folder: str | None = None

        async def _async_pre_start_kernel(self, **kw):
            if self.kernel_folder is None:
                self.kernel_folder = tempfile.mkdtemp(prefix="" if socket_root else "yafdp-kernel-", dir=socket_root)
                self.connection_file = os.path.join(self.kernel_folder, "kernel.json")
                sockets = os.path.join(self.kernel_folder, "k")  # the kernel binds k-1 ... k-5
                if self.transport == "ipc" and len(os.fsencode(sockets)) + 2 <= SOCKET_PATH_BYTES:
                    self.ip = sockets
                else:
                    self.transport, self.ip = "tcp", localhost()
            return await super()._async_pre_start_kernel(**kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart)  # removes the connection file and the socket files
            if not restart and self.kernel_folder is not None:
                shutil.rmtree(self.kernel_folder, ignore_errors=True)
                self.kernel_folder = None

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # set by shutdown_kernel just before it interrupts
                return
            await super()._async_interrupt_kernel()

        pre_start_kernel = _async_pre_start_kernel  # the public names are bound to the base class's functions
        cleanup_resources = _async_cleanup_resources

    return ChapterKernelManager


class NotebookFailed(YafdpError):
    """One or more chapters failed: which, each with the cell and error papermill reported (one line each);
    ``failed`` names the chapters."""

    def __init__(self, message: str, failed: list[str] | None = None):
        super().__init__(message)
        self.failed = failed or []


def run_notebook(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False) -> ExecutedNotebook:
    """Execute one notebook with papermill into ``out_dir/notebooks/`` and export it to ``out_dir/html/``.

    The notebook runs in a folder of its own beside the build (:func:`stage_notebook`) and gets ``out_dir="."``
    as a parameter, so neither the executed notebook nor its HTML copy shows the path of the machine that built
    it; and it gets of ``parameters`` those its ``parameters`` cell declares (e.g. ``{"solutions": True}``: the
    exercises are answered by their worked solutions, the teacher's copy; ``{"backend": "moto"}`` where a chapter
    has one). Once it has ended, what it wrote (the executed notebook, its HTML copy, its figures and runs)
    replaces the earlier build's copies (:func:`publish`); until then they are left as they were.

    Raises :class:`NotebookFailed` naming the chapter, the cell and the error when a cell fails; the executed
    notebook and its HTML copy are still written, up to and including the failing cell.
    """
    staged, failure = stage_notebook(path, out_dir, parameters, log_output=log_output)
    result = publish(staged, out_dir)
    if failure is not None:
        raise failure
    return result


def stage_notebook(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False,
                   socket_root: str | None = None) -> tuple[ExecutedNotebook, NotebookFailed | None]:
    """Execute one notebook with papermill in ``out_dir/.building/<chapter>/`` (emptied first), as
    :func:`run_notebook` says, and write its executed copy and its HTML copy there; ``out_dir`` itself is not
    touched; its kernel's sockets are made in ``socket_root`` (:func:`kernel_manager_class`). Returns the staged
    chapter and, when a cell failed, the :class:`NotebookFailed` naming the chapter, the cell and the error (the
    copies then end with the failing cell). Any other error (e.g. the kernel died) is raised, with nothing to
    publish.
    """
    staged, failure, notebook = execute_staged(path, out_dir, parameters, log_output=log_output,
                                               socket_root=socket_root)
    return write_html_copy(staged, notebook), failure


def execute_staged(path: Path, out_dir: Path, parameters: dict | None = None, *, log_output: bool = False,
                   socket_root: str | None = None) -> tuple[ExecutedNotebook, NotebookFailed | None, dict]:
    """The first half of :func:`stage_notebook`: execute the chapter in its staging folder and write its executed
    copy there. Returns the staged chapter (its HTML copy not written yet: :func:`write_html_copy`), the
    :class:`NotebookFailed` when a cell failed (or None), and the executed notebook (an ``nbformat`` node)."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    staging = Path(out_dir).resolve() / STAGING / path.stem
    shutil.rmtree(staging, ignore_errors=True)  # what a build killed outright (SIGKILL) left
    executed = staging / "notebooks" / path.name
    html = staging / "html" / path.with_suffix(".html").name
    executed.parent.mkdir(parents=True)
    html.parent.mkdir(parents=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    declared = papermill.inspect_notebook(str(path))
    given = {"out_dir": ".", **{k: v for k, v in (parameters or {}).items() if k in declared}}
    failure = None
    try:  # written once, at the end (or at the failing cell), not after every cell: seconds of JSON for a long chapter
        notebook = papermill.execute_notebook(str(path), str(executed), parameters=given, cwd=str(staging),
                                              kernel_name="python3", progress_bar=False, log_output=log_output,
                                              request_save_on_cell_execute=False, extra_arguments=KERNEL_ARGUMENTS,
                                              start_timeout=KERNEL_START_SECONDS,
                                              kernel_manager_class=kernel_manager_class(socket_root),
                                              shutdown_kernel=KERNEL_SHUTDOWN)
    except PapermillExecutionError as exc:
        failure = NotebookFailed(f"{path.name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
        notebook = nbformat.read(executed, as_version=4)
    recorded = notebook.metadata.get("papermill", {})  # papermill records where it read and wrote: the builder's paths
    recorded.update({k: f"notebooks/{path.name}" for k in ("input_path", "output_path") if k in recorded})
    nbformat.write(notebook, executed)
    return ExecutedNotebook(path.stem, executed, html, time.perf_counter() - started,
                            cpu_seconds() - cpu_started), failure, notebook


def write_html_copy(staged: ExecutedNotebook, notebook: dict) -> ExecutedNotebook:
    """Write the HTML copy of the executed ``notebook`` (an ``nbformat`` node) at ``staged.html``
    (:func:`html_exporter`); returns ``staged`` with the time and CPU it took added.

    A build exports every chapter in its own process, not in the chapters' workers: the exporter's first export in
    a process compiles its templates and the regular expressions of its syntax highlighter and CSS selectors, half
    a second of CPU; the next exports take a tenth of that."""
    started, cpu_started = time.perf_counter(), cpu_seconds()
    body, _ = html_exporter().from_notebook_node(notebook)
    staged.html.write_text(body, encoding="utf-8")
    return dataclasses.replace(staged, seconds=staged.seconds + time.perf_counter() - started,
                               cpu_seconds=staged.cpu_seconds + cpu_seconds() - cpu_started)


def publish(staged: ExecutedNotebook, out_dir: Path) -> ExecutedNotebook:
    """Move what a chapter wrote in its staging folder (:func:`stage_notebook`) into the build ``out_dir``, each
    file or run folder renamed over the earlier build's copy, SIGINT and SIGTERM held meanwhile (so a chapter's
    files are all its earlier build's or all this one's); then remove the staging folder. Returns the chapter
    with its paths in ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    staging = out_dir / STAGING / staged.name
    aside = out_dir / STAGING / f"{staged.name}.replaced"  # the earlier copies of run folders, removed at the end
    numbers = itertools.count()  # their names there
    with signals_held():
        for entry in sorted(staging.iterdir()):
            if entry.name in SHARED_FOLDERS and entry.is_dir():
                (out_dir / entry.name).mkdir(exist_ok=True)
                moves = [(item, out_dir / entry.name / item.name) for item in sorted(entry.iterdir())]
            else:
                moves = [(entry, out_dir / entry.name)]
            for new, old in moves:
                if old.is_dir() and not old.is_symlink():  # a folder cannot be renamed over one that is not empty
                    aside.mkdir(parents=True, exist_ok=True)
                    old.rename(aside / str(next(numbers)))
                new.replace(old)
        shutil.rmtree(aside, ignore_errors=True)
        shutil.rmtree(staging)
    return ExecutedNotebook(staged.name, out_dir / "notebooks" / staged.notebook.name,
                            out_dir / "html" / staged.html.name, staged.seconds, staged.cpu_seconds)


def run_workbook(out_dir: Path, parameters: dict | None = None, only: list[str] | None = None,
                 notebooks_dir: Path = NOTEBOOKS_DIR, echo=print, jobs: int | None = None) -> list[ExecutedNotebook]:
    """Execute every chapter (or those of ``only``), ``jobs`` at a time (default: :func:`default_jobs`), and return
    them in course order; then write the course's index page, ``out_dir/html/index.html``, and the links between
    the chapters' HTML copies (:func:`yafdp.site.write_site`).

    The chapters do not read each other's output, so they run side by side, each in a worker process of its
    own (papermill changes the working directory of the process it runs in), the longest first (as an earlier build
    in ``out_dir`` took them; in a first build, from the last chapter back). Each chapter's files replace the
    earlier build's only once it has ended (:func:`publish`). A chapter that
    fails does not stop the others: every chapter runs, and then :class:`NotebookFailed` lists each one that failed
    with its cell and error, one line each. An interrupt (``KeyboardInterrupt``: SIGINT or SIGTERM reach this
    process alone, the workers and kernels being in sessions of their own) kills the chapters still running and
    those not started, with their kernels, and leaves their earlier build's files as they were; the index is then
    written only if a chapter ended meanwhile (a build stopped before any did writes none, and removes ``out_dir``
    when it made it and it is still empty).
    """
    out_dir = Path(out_dir).resolve()
    chapters = notebooks(notebooks_dir, only)
    new_folder = not out_dir.exists()  # a build stopped before any chapter ended leaves no folder it made
    ended: dict[str, bool] = {}  # chapter stem -> whether it passed, as each ends
    stopped = True  # until every chapter has ended: an interrupt (or an error) stops the build early
    try:
        done = _execute(out_dir, chapters, parameters, echo, jobs, ended)
        stopped = False
        return done
    except NotebookFailed:
        stopped = False
        raise
    finally:  # the course's index, whatever failed: a failed chapter is marked, and its copy left out of the links
        shutil.rmtree(out_dir / STAGING, ignore_errors=True)
        if new_folder and stopped and not ended and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        if ended or not stopped:
            with signals_held():
                index = write_site(out_dir / "html", notebooks(notebooks_dir), ran=list(ended),
                                   failed=[stem for stem, passed in ended.items() if not passed])
            echo(f"  wrote {index}: the course's chapters, linked")


def _execute(out_dir: Path, chapters: list[Path], parameters: dict | None, echo, jobs: int | None,
             ended: dict[str, bool]) -> list[ExecutedNotebook]:
    """Execute ``chapters``, ``jobs`` at a time, and return them in course order (see :func:`run_workbook`);
    ``ended`` gets each chapter's stem as it ends, with whether it passed."""
    import multiprocessing.connection

    jobs = max(1, min(jobs or default_jobs(), len(chapters) or 1))
    done: dict[Path, ExecutedNotebook] = {}
    failed: dict[Path, NotebookFailed] = {}
    running: dict = {}  # the reading end of each running chapter's pipe -> (chapter, its worker process)
    started: list = []  # every worker process started
    sockets = tempfile.mkdtemp(prefix="yafdp-kernels-")  # the kernels' sockets (kernel_manager_class), gone at the end

    def start(path: Path) -> None:
        with signals_held():  # an interrupt meanwhile comes once the worker is known, and is killed
            receive, send = os.pipe()
            try:
                worker = _start_worker(send, path, out_dir, parameters, sockets)
            except BaseException:
                os.close(receive)
                raise
            finally:
                os.close(send)
            running[open(receive, "rb")] = (path, worker)
            started.append(worker)

    def wait() -> tuple[Path, ExecutedNotebook | None]:
        """The next chapter to end, published; its result, or None (and the failure noted) when it failed."""
        receive = multiprocessing.connection.wait(list(running))[0]
        path, worker = running.pop(receive)
        with receive:
            try:
                result, failure, notebook = pickle.load(receive)
            except EOFError:  # the worker died before it could say (e.g. killed)
                result, failure = None, NotebookFailed(f"{path.name} failed: its worker process ended with exit code "
                                                       f"{worker.wait()}")
        worker.wait()
        if result is not None:
            try:
                result = write_html_copy(result, notebook)
            except Exception as exc:  # as in the worker: one line naming the chapter, nothing published
                result, failure = None, _chapter_failed(path, exc)
            else:
                result = publish(result, out_dir)  # a failed cell's copies too: they show the error
        ended[path.stem] = failure is None
        if failure is not None:
            failed[path] = failure
            return path, None
        done[path] = result
        return path, result

    try:
        if jobs == 1:  # one after the other, in course order
            for path in chapters:
                echo(f"running {path.name} …")
                start(path)
                _, result = wait()
                echo(f"  {failed[path]}" if result is None else
                     f"  wrote {result.notebook} and {result.html} ({_took(result)})")
        else:
            # Longest first (as the last workbook run measured them, when it left its notebooks), so the long ones
            # overlap; a chapter with no such time (a first build) from the last back, as chapters 05 to 09 run the
            # course's largest workloads (course order would start chapter 09 seventh, and end the build with it alone).
            waiting = sorted(reversed(chapters), key=lambda p: -_last_seconds(out_dir / "notebooks" / p.name))
            echo(f"running {len(chapters)} chapter(s), {jobs} at a time …")
            while waiting or running:
                while waiting and len(running) < jobs:
                    start(waiting.pop(0))
                path, result = wait()
                echo(f"  {failed[path]}" if result is None else
                     f"  {path.name}: wrote {result.notebook} and {result.html} ({_took(result)})")
    finally:  # an interrupt: what still runs is killed, kernels included, before it writes more
        _kill(started)
        for receive in running:
            receive.close()
        shutil.rmtree(sockets, ignore_errors=True)
    if failed:
        raise NotebookFailed("\n".join(str(failed[path]) for path in chapters if path in failed),
                             failed=[path.name for path in chapters if path in failed])
    return [done[path] for path in chapters]


def _kill(workers) -> None:
    """Kill the worker processes ``workers`` (:class:`subprocess.Popen`) still running and everything they started
    (a chapter's kernel, which jupyter_client starts in a session of its own, and whatever the kernel started) with
    SIGKILL, and wait for the workers: no code of theirs runs any more (no cleanup that could write into the build
    or print a traceback). Every one of those processes is stopped (SIGSTOP) first, until none is left running to
    start another, and only then killed: a process killed first would leave its children to ``init``, out of sight."""
    import psutil

    stopped: list = []
    found = [psutil.Process(worker.pid) for worker in workers if worker.poll() is None]  # not reaped: still theirs
    while found:
        for process in found:
            try:
                process.suspend()
                while process.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    time.sleep(0.001)  # SIGSTOP lands when the process next leaves the kernel: a fork then ends first
            except psutil.NoSuchProcess:
                pass
            stopped.append(process)
        found = [child for process in found for child in _children(process) if child not in stopped]
    for process in stopped:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    for worker in workers:
        worker.wait()


def _children(process) -> list:
    """``process``'s children (:class:`psutil.Process`), none once it has gone."""
    import psutil

    try:
        return process.children()
    except psutil.NoSuchProcess:
        return []


def default_jobs() -> int:
    """How many chapters run at once by default: one more than the cores. A chapter also waits (its kernel starting
    and stopping, moto's HTTP and queue polls in chapter 05), and the chapter beside it uses that time; more would
    only share the cores."""
    return (os.cpu_count() or 1) + 1


def _start_worker(send: int, path: Path, out_dir: Path, parameters: dict | None, socket_root: str):
    """A chapter's worker: a new Python interpreter (never a fork of this process, whose threads may hold locks),
    in a session of its own from its first instruction, so that a Ctrl-C at the terminal (SIGINT to the whole
    process group) or ``timeout``'s signal reaches the ``yafdp`` command alone, which then kills the workers
    (:func:`_kill`); otherwise each worker's nbclient met it too, stopped its kernel from under the cell
    it waited on, and logged "Kernel died while waiting for execute reply.". It reads its chapter from its stdin and
    writes its outcome to the file descriptor ``send`` (:func:`_chapter_worker`); its kernel's sockets are made in
    ``socket_root``. Returns its
    :class:`subprocess.Popen`."""
    import subprocess
    import sys

    package_root = str(Path(__file__).resolve().parents[1])  # this yafdp, not one in the folder the command runs in
    worker = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path[0] = {package_root!r}; "
                               f"from yafdp.workbook import _chapter_worker; _chapter_worker({send})"],
                              stdin=subprocess.PIPE, pass_fds=(send,), start_new_session=True)
    with worker.stdin:
        pickle.dump((path, out_dir, parameters, socket_root), worker.stdin)
    return worker


# What a build's processes never import, though a library they use would: jsonschema (imported by nbformat, which
# papermill and nbconvert read and write notebooks with) imports rfc3987_syntax, where installed, for its "iri" and
# "iri-reference" format checks, and rfc3987_syntax builds an Earley parser of RFC 3987's grammar as it is imported:
# 1.4 s of CPU in every process that imports nbformat, two thirds of a worker's papermill import
# (https://github.com/python-jsonschema/jsonschema/issues/1428). nbformat validates notebooks with no format checker
# (nor do its schemas name such a format), and jsonschema leaves those two checks out when the import fails.
UNUSED_IMPORTS = ("rfc3987_syntax",)
# What a chapter's worker leaves out as well, a tenth of a second of CPU in each (it runs one chapter and exits: no
# other code of its process misses them): the libraries of jsonschema's other optional format checks (fqdn,
# rfc3986-validator, rfc3339-validator, webcolors, uri-template, isoduration, which imports arrow:
# https://python-jsonschema.readthedocs.io/en/stable/validate/#validating-formats), for the reason above, and
# papermill's S3 handler, which imports boto3 (papermill would say that boto3 is missing if a notebook's path were
# an s3:// one; a worker reads and writes local files only).
WORKER_UNUSED_IMPORTS = (*UNUSED_IMPORTS, "fqdn", "rfc3986_validator", "rfc3339_validator", "webcolors", "uri_template",
                         "isoduration", "papermill.s3")


def leave_out(names: tuple[str, ...]) -> None:
    """Make an import of any of the modules ``names`` not imported yet raise ImportError in this process, for good
    (:data:`UNUSED_IMPORTS`, :data:`WORKER_UNUSED_IMPORTS`)."""
    import sys

    sys.modules.update({name: None for name in names if name not in sys.modules})


def _chapter_failed(path: Path, exc: Exception) -> NotebookFailed:
    """A chapter that failed other than in a cell (its kernel died, its HTML copy could not be written), in one line."""
    return NotebookFailed(f"{path.name} failed: {type(exc).__name__}: {exc}")


def _chapter_worker(send: int) -> None:
    """A chapter's worker process (:func:`_start_worker`): it reads ``(path, out_dir, parameters, socket_root)`` from
    its stdin, executes the chapter in its staging folder (:func:`execute_staged`) and writes ``(staged, failure,
    notebook)``, pickled, to the file descriptor ``send``, or ``(None, failure, None)`` when nothing was staged; the
    build writes the HTML copy (:func:`write_html_copy`)."""
    import sys

    leave_out(WORKER_UNUSED_IMPORTS)
    path, out_dir, parameters, socket_root = pickle.load(sys.stdin.buffer)
    try:
        outcome = execute_staged(path, out_dir, parameters, socket_root=socket_root)
    except Exception as exc:  # e.g. the kernel died: still one line naming the chapter
        outcome = None, _chapter_failed(path, exc), None
    with open(send, "wb") as said:
        pickle.dump(outcome, said)


def _took(result: ExecutedNotebook) -> str:
    return f"{result.seconds:.1f} s, {result.cpu_seconds:.1f} s of CPU"


def _last_seconds(executed: Path) -> float:
    """How long an executed notebook's cells took (papermill's metadata), 0 when it is not there or unreadable."""
    try:
        return float(json.loads(executed.read_text(encoding="utf-8"))["metadata"]["papermill"]["duration"] or 0)
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
