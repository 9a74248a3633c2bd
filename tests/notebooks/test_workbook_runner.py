"""The workbook runner: chapters side by side in worker processes, results in course order, a failure named by
its chapter, only the parameters a chapter declares."""

import os
import re

import pytest

from yafdp.workbook import NotebookFailed, run_workbook


def _chapter(folder, name, code, parameters="out_dir = None"):
    import nbformat  # here, not at collection: it imports jsonschema, a second or two in every pytest-xdist worker

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / name)


def test_chapters_run_side_by_side_into_a_relative_build_folder_and_come_back_in_course_order(tmp_path, monkeypatch):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    for name in ("03_third", "02_second", "01_first"):
        _chapter(chapters, f"{name}.ipynb", "from pathlib import Path\nPath(out_dir, 'mark').mkdir(exist_ok=True)")
    monkeypatch.chdir(tmp_path)
    done = run_workbook("build", notebooks_dir=chapters, echo=lambda line: None, jobs=2)
    assert [chapter.name for chapter in done] == ["01_first", "02_second", "03_third"]
    for chapter in done:  # papermill runs each chapter from notebooks/: nothing may land under it
        assert chapter.html.exists() and chapter.notebook.parent == tmp_path / "build" / "notebooks"
    assert not (chapters / "build").exists() and (tmp_path / "build" / "mark").is_dir()
    assert all(chapter.cpu_seconds > 0 for chapter in done)  # its worker's and its kernel's CPU, counted in the worker


def test_a_chapter_gets_only_the_parameters_it_declares(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_teacher.ipynb", "assert solutions is True", parameters="out_dir = None\nsolutions = False")
    _chapter(chapters, "02_plain.ipynb", "assert 'solutions' not in globals()")
    done = run_workbook(tmp_path / "build", {"solutions": True}, notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    assert len(done) == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_workbook_keeps_going_past_a_failing_chapter_and_names_every_one_that_failed(tmp_path, jobs):
    """Each failed chapter is named with its cell and error, one line each, and keeps its HTML copy, which shows
    the error; the chapters after a failure still run."""
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_broken.ipynb", "raise KeyError('Order_Initiated')")
    _chapter(chapters, "02_fine.ipynb", "print('fine')")
    _chapter(chapters, "03_broken.ipynb", "x = 1\nraise ValueError('no such service')")
    with pytest.raises(NotebookFailed) as failed:
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=jobs)
    lines = str(failed.value).splitlines()
    assert failed.value.failed == ["01_broken.ipynb", "03_broken.ipynb"] and len(lines) == 2
    assert re.fullmatch(r"01_broken\.ipynb failed in cell \d+: KeyError: 'Order_Initiated'", lines[0]), lines[0]
    assert re.fullmatch(r"03_broken\.ipynb failed in cell \d+: ValueError: no such service", lines[1]), lines[1]
    assert "no such service" in (tmp_path / "build" / "html" / "03_broken.html").read_text()
    assert (tmp_path / "build" / "html" / "02_fine.html").exists()  # ran to its end, after the first failure


def test_the_teachers_copy_goes_beside_the_learners_build_by_default(tmp_path, monkeypatch, capsys):
    from yafdp.cli import main

    learner = tmp_path / "build" / "notebooks" / "01_identify_events.ipynb"
    learner.parent.mkdir(parents=True)
    learner.write_text("the learner's copy")
    monkeypatch.chdir(tmp_path)  # the command's default --out is relative to where it runs
    assert main(["workbook", "--solutions", "--only", "01", "--jobs", "1"]) == 0, capsys.readouterr().err
    assert learner.read_text() == "the learner's copy"
    said = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"  wrote \S+ and \S+ \(\d+\.\d s, \d+\.\d s of CPU\)", said[1]), said
    assert re.fullmatch(r"1 notebook\(s\) executed into \S+ in \d+\.\d s \(\d+\.\d s of CPU in the chapters\)", said[-1]), said
    assert (tmp_path / "build" / "solutions" / "html" / "01_identify_events.html").exists()


def _course_chapter(folder, name, title, minutes, goals):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    intro = f"# {name[:2]} · {title}\n\n*About {minutes} minutes.*\n\nIn this chapter you will learn:\n\n" + "".join(
        f"{n}. {goal}\n" for n, goal in enumerate(goals, 1))
    notebook.cells = [nbformat.v4.new_markdown_cell(intro),
                      nbformat.v4.new_code_cell("out_dir = None", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(f"print('{title}')")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / f"{name}.ipynb")


def _nav(page: str) -> list[str]:
    import re

    navs = re.findall(r"<!-- yafdp-course-nav -->(.*?)<!-- /yafdp-course-nav -->", page, flags=re.S)
    return [re.findall(r'href="([^"]+)"', nav) for nav in navs]


def test_the_workbook_writes_an_index_of_the_chapters_present_and_links_each_to_its_neighbours(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _course_chapter(chapters, "01_events", "Identify the events", 25, ["name the **events**", "write `schemas`"])
    _course_chapter(chapters, "02_rules", "Map the rules", 20, ["read a pattern\n   over two lines"])
    _course_chapter(chapters, "03_end", "Summary", 5, ["look back"])
    html = tmp_path / "build" / "html"
    run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    index = (html / "index.html").read_text()
    assert "A course of 3 chapters, about 50 minutes" in index and "<script" not in index
    assert [f"0{n}_" in index for n in (1, 2, 3)] == [True] * 3
    assert '<a href="01_events.html">01 · Identify the events</a>' in index and "about 25 minutes" in index
    assert "<li>name the <strong>events</strong></li><li>write <code>schemas</code></li>" in index
    assert "<li>read a pattern over two lines</li>" in index
    assert _nav((html / "01_events.html").read_text()) == [["index.html", "02_rules.html"]] * 2  # top and bottom
    assert _nav((html / "02_rules.html").read_text()) == [["01_events.html", "index.html", "03_end.html"]] * 2
    assert _nav((html / "03_end.html").read_text()) == [["02_rules.html", "index.html"]] * 2

    # A chapter inserted (the course renumbered) and one built alone: the site follows the notebooks present,
    # each copy keeps one set of links, and a chapter not built yet is listed without a link (nor linked to: the
    # copy of the old 03_end is no chapter now).
    (chapters / "03_end.ipynb").rename(chapters / "04_end.ipynb")
    _course_chapter(chapters, "03_choice", "Classic or custom bus?", 30, ["choose a bus"])
    run_workbook(tmp_path / "build", notebooks_dir=chapters, only=["03"], echo=lambda line: None, jobs=1)
    index = (html / "index.html").read_text()
    assert "A course of 4 chapters, about 80 minutes" in index
    assert '<a href="03_choice.html">03 · Classic or custom bus?</a>' in index
    assert "04 · Summary <span class=\"missing\">(not built: <code>yafdp workbook --only 04</code>)" in index
    assert _nav((html / "03_choice.html").read_text()) == [["02_rules.html", "index.html"]] * 2  # 04 not built
    assert _nav((html / "02_rules.html").read_text()) == [["01_events.html", "index.html", "03_choice.html"]] * 2


def test_a_failed_chapter_is_marked_in_the_index_and_left_out_of_the_links_until_it_passes(tmp_path):
    """The index is written whatever failed; a failed chapter's copy shows the error, so the course does not lead
    to it from its neighbours, and a later build of another chapter does not forget that it failed."""
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _course_chapter(chapters, "01_events", "Identify the events", 25, ["name the events"])
    _course_chapter(chapters, "02_rules", "Map the rules", 20, ["read a pattern"])
    _course_chapter(chapters, "03_end", "Summary", 5, ["look back"])
    broken = (chapters / "02_rules.ipynb").read_text().replace("print(", "raise ValueError(", 1)
    (chapters / "02_rules.ipynb").write_text(broken)
    html = tmp_path / "build" / "html"
    with pytest.raises(NotebookFailed):
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    for build in range(2):  # the failed build, then a build of chapter 01 alone
        index = (html / "index.html").read_text()
        assert "02 · Map the rules</a> <span class=\"missing\">(failed in its last build" in index
        assert _nav((html / "01_events.html").read_text()) == [["index.html", "03_end.html"]] * 2
        run_workbook(tmp_path / "build", notebooks_dir=chapters, only=["01"], echo=lambda line: None, jobs=1)


def test_a_chapters_kernel_is_stopped_without_an_interrupt_and_still_interrupted_when_asked():
    # jupyter_client interrupts a kernel (SIGINT) before it asks it to shut down; landing in the handler of
    # papermill's last request, it made the kernel log "KeyboardInterrupt caught in kernel" on a good build.
    import asyncio
    import signal

    from yafdp.workbook import kernel_manager_class

    sent = []

    class Recording(kernel_manager_class()):
        async def _async_signal_kernel(self, signum):
            sent.append(signum)
            await super()._async_signal_kernel(signum)

    async def start_interrupt_and_stop():
        manager = Recording(kernel_name="python3")
        await manager.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=600)
            await manager.interrupt_kernel()  # asked for: sent
        finally:
            client.stop_channels()
            await manager.shutdown_kernel()
        return await manager.is_alive()

    assert asyncio.run(start_interrupt_and_stop()) is False
    assert sent == [signal.SIGINT]


def test_a_chapters_kernel_listens_on_sockets_of_its_own_not_on_tcp_ports_another_kernel_could_be_given():
    # Over TCP, jupyter_client picked each port by binding port 0 and letting it go before the kernel bound it: two
    # chapters starting at once were once handed the same port ("Address already in use"; the kernel died).
    import asyncio
    from pathlib import Path

    from yafdp.workbook import kernel_manager_class

    async def start_run_and_stop():
        managers = [kernel_manager_class()(kernel_name="python3") for _ in range(2)]
        await asyncio.gather(*(manager.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
                               for manager in managers))
        seen = []
        for manager in managers:
            folder = Path(manager.kernel_folder)
            client = manager.client()
            client.start_channels()
            try:
                await client.wait_for_ready(timeout=600)
                info = manager.get_connection_info()
                seen.append((info["transport"], Path(info["ip"]).parent == folder,
                             folder.stat().st_mode & 0o777, sorted(p.name for p in folder.iterdir())))
                reply = await client.execute("1 + 1", reply=True, timeout=600)
                seen.append(reply["content"]["status"])
            finally:
                client.stop_channels()
                await manager.shutdown_kernel(now=True)
            seen.append(folder.exists())
        return seen, {manager.get_connection_info()["ip"] for manager in managers}

    seen, addresses = asyncio.run(start_run_and_stop())
    sockets = ["k-1", "k-2", "k-3", "k-4", "k-5", "kernel.json"]
    assert seen == [("ipc", True, 0o700, sockets), "ok", False] * 2
    assert len(addresses) == 2


def test_a_kernel_whose_socket_path_would_be_too_long_listens_on_tcp_and_still_runs(tmp_path):
    import asyncio

    from yafdp.workbook import SOCKET_PATH_BYTES, kernel_manager_class

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    assert len(os.fsencode(deep)) > SOCKET_PATH_BYTES

    async def start_run_and_stop():
        manager = kernel_manager_class(str(deep))(kernel_name="python3")
        await manager.start_kernel(extra_arguments=["--IPKernelApp.log_level=ERROR"])
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=600)
            reply = await client.execute("1 + 1", reply=True, timeout=600)
            return manager.get_connection_info()["transport"], reply["content"]["status"]
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    assert asyncio.run(start_run_and_stop()) == ("tcp", "ok")
    assert not list(deep.iterdir())


def test_a_chapters_kernel_is_stopped_at_once_after_its_last_cell_not_left_to_finalize(tmp_path):
    # Its files are written by then; a graceful exit only spent CPU on IPython's reset and the interpreter's teardown.
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_written.ipynb", "import atexit\nfrom pathlib import Path\nPath(out_dir, 'written').touch()\n"
                                          "atexit.register(lambda: Path(out_dir, 'finalized').touch())")
    run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    assert (tmp_path / "build" / "written").exists() and not (tmp_path / "build" / "finalized").exists()


# A kernel start-up script (IPython runs every file in $IPYTHONDIR/profile_default/startup): after the first cell
# that saved a figure, the kernel says so (a file named by its pid, holding its working folder) and holds there, so
# the test sends its signal while a chapter is half done: its new figure written, its notebook not yet.
HOLD_AFTER_A_FIGURE = """
import os, time
from pathlib import Path

def _hold(result):
    if "figures.save(" in (result.info.raw_cell or ""):
        said = Path(os.environ["YAFDP_TEST_HELD"], str(os.getpid()))
        Path(f"{said}.part").write_text(os.getcwd())
        os.replace(f"{said}.part", said)  # whole when the test sees it (it reads as soon as the name is there)
        while True:
            time.sleep(1)

get_ipython().events.register("post_run_cell", _hold)
"""


def _files(folder):
    """Every file under ``folder``: its bytes and when it was last written."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def _interrupted_build(tmp_path, out, only, jobs, signum, to_group, temporary, when="half done"):
    """``yafdp workbook --only ONLY --out OUT`` stopped by ``signum`` (to the command, or to its whole process group,
    as Ctrl-C at a terminal and ``timeout`` send it) once each of its chapters holds half done (``when``), or as soon
    as the command has started a process (``when="started"``: a chapter's worker, still starting), with
    ``temporary`` as its temporary folder (``TMPDIR``); returns the
    command's exit code, its stderr, the kernels' pids with where they ran (none when signalled at the start), and
    every process the command had started when the signal was sent (:class:`psutil.Process`)."""
    import os
    import subprocess
    import sys
    import time

    import psutil

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-hold.py").write_text(HOLD_AFTER_A_FIGURE)
    held = tmp_path / "held"
    held.mkdir()
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipython"), YAFDP_TEST_HELD=str(held), TMPDIR=temporary)
    said = tmp_path / "stderr"  # a file: a process left running would hold a pipe open, and the test wait on it
    with said.open("w") as stderr:
        command = subprocess.Popen([sys.executable, "-m", "yafdp", "workbook", "--only", *only, "--jobs", str(jobs),
                                    "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)
    try:
        yafdp = psutil.Process(command.pid)
        # A handshake: each chapter's kernel says it holds, or the command has a child. The chapters hold, so the
        # build cannot end before the signal, however slow or fast the machine.
        # An upper bound, as for the command's exit below, not a measure of speed: a chapter whose kernel failed to
        # start ends without holding, and the others hold forever; the test then fails with the command's stderr
        # instead of hanging the suite (seen once, when kernels listened on TCP ports: "Address already in use").
        handshake_by = time.monotonic() + 600
        while (len(_said(held)) < len(only)) if when == "half done" else not yafdp.children():
            assert command.poll() is None, said.read_text()
            assert time.monotonic() < handshake_by, f"no handshake from every chapter: {said.read_text()}"
            psutil.wait_procs([yafdp], timeout=0.01)
        kernels = {int(p.name): p.read_text() for p in _said(held)}
        started = yafdp.children(recursive=True)
        assert started
        (os.killpg if to_group else os.kill)(command.pid, signum)
        command.wait(timeout=600)
    finally:
        if command.poll() is None:
            command.kill()
    return command.returncode, said.read_text(), kernels, started


def _said(held):
    """The files the held kernels wrote whole in ``held`` (named by their pids)."""
    return [p for p in held.iterdir() if p.name.isdigit()]


def _started_by(held):
    """The processes running (zombies aside: they run no code) with this test's ``YAFDP_TEST_HELD=held`` in their
    environment: the command's, whoever started them, wherever they were moved (an orphan's parent is ``init``)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("YAFDP_TEST_HELD") == str(held) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:  # gone meanwhile, or another user's
            pass
    return found


def _all_gone(processes) -> bool:
    """Whether every one of ``processes`` has ended (killed with SIGKILL, each is gone as soon as whoever reaps it
    does; a zombie runs no code)."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=60)
    return all(process.status() == psutil.STATUS_ZOMBIE for process in alive if process.is_running())


@pytest.fixture
def temporary():
    """A temporary folder (``TMPDIR``) for the command under test, with a short path (a kernel's sockets are made
    there), removed after the test; the test checks the command left nothing in it."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="yafdp-test-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def earlier_build(run_folder):
    """A build of chapters 01 and 02, as ``yafdp workbook`` writes it, made once per test run: the first pytest-xdist
    worker that asks builds it, the others wait for it (``run_folder``). Nobody writes into it: each test copies it."""
    import shutil
    import subprocess
    import sys

    from filelock import FileLock

    folder = run_folder / "earlier"
    with FileLock(f"{folder}.lock"):
        if not (folder / "built").exists():  # none yet, or one that failed part way: built again
            shutil.rmtree(folder, ignore_errors=True)
            done = subprocess.run([sys.executable, "-m", "yafdp", "workbook", "--only", "01", "02", "--out",
                                   str(folder / "build")], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            (folder / "built").touch()
    return folder / "build"


@pytest.mark.parametrize("only, jobs, signum, to_group", [
    (["01"], 1, "SIGINT", True),  # Ctrl-C at a terminal: the command's whole process group
    (["01"], 1, "SIGTERM", False),
    (["01", "02"], 2, "SIGINT", False),  # timeout -s INT
    (["01", "02"], 2, "SIGTERM", True),
])
def test_an_interrupted_build_leaves_the_earlier_build_as_it_was_and_says_so_in_one_line(
        tmp_path, earlier_build, temporary, only, jobs, signum, to_group):
    import shutil
    import signal

    out = tmp_path / "build"
    shutil.copytree(earlier_build, out)
    before = _files(out)
    code, err, kernels, started = _interrupted_build(tmp_path, out, only, jobs, getattr(signal, signum), to_group,
                                                     temporary)
    assert (code, err) == (130, "yafdp: interrupted\n")
    assert _files(out) == before  # not one file removed, rewritten or added: the notebooks, HTML, figures, index
    assert sorted(p.name for p in out.iterdir()) == ["figures", "html", "notebooks"]
    assert all(folder.startswith(str(out / ".building")) for folder in kernels.values())
    assert set(kernels) <= {process.pid for process in started}
    # nothing the command started is left running (or writing) after it: no worker, no kernel, no kernel's sockets
    assert _all_gone(started) and not _started_by(tmp_path / "held") and not os.listdir(temporary)


@pytest.mark.parametrize("signum, to_group", [("SIGINT", True), ("SIGINT", False), ("SIGTERM", False)])
def test_a_build_interrupted_as_its_first_chapter_starts_leaves_nothing_running_and_says_so_in_one_line(
        tmp_path, earlier_build, temporary, signum, to_group):
    """The signal lands as soon as the command has started a chapter's worker: whatever that worker is doing then
    (starting Python, importing papermill, starting its kernel), it is killed with all it started, and says nothing."""
    import shutil
    import signal

    out = tmp_path / "build"
    shutil.copytree(earlier_build, out)
    before = _files(out)
    code, err, _, started = _interrupted_build(tmp_path, out, ["01"], 1, getattr(signal, signum), to_group,
                                               temporary, when="started")
    assert (code, err) == (130, "yafdp: interrupted\n")
    assert _files(out) == before and sorted(p.name for p in out.iterdir()) == ["figures", "html", "notebooks"]
    assert _all_gone(started) and not _started_by(tmp_path / "held") and not os.listdir(temporary)


def test_a_build_interrupted_in_a_new_folder_writes_no_index(tmp_path, temporary):
    import signal

    out = tmp_path / "new"
    code, err, _, started = _interrupted_build(tmp_path, out, ["01"], 1, signal.SIGINT, True, temporary)
    assert (code, err) == (130, "yafdp: interrupted\n")
    assert _all_gone(started) and not _started_by(tmp_path / "held") and not os.listdir(temporary)
    assert not out.exists()  # nor the folder it made


def test_a_build_folder_may_hold_the_builds_make_workbook_makes_inside_it(tmp_path):
    """``make workbook CATALOG=examples/trip_booking`` builds into build/trip_booking/; plain ``make workbook``
    still builds into build/ afterwards. Anything else in the folder is still refused without --force."""
    import subprocess
    import sys

    build = tmp_path / "build"
    for folder in ("html", "figures", "trip_booking/html", "trip_booking/notebooks", "trip_booking/solutions/html"):
        (build / folder).mkdir(parents=True)
    command = [sys.executable, "-m", "yafdp", "workbook", "--only", "01", "--out", str(build)]
    built = subprocess.run(command, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert (build / "html" / "01_identify_events.html").is_file() and (build / "trip_booking" / "html").is_dir()
    (build / "trip_booking" / "notes.txt").write_text("mine")
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "holds what no workbook build holds (trip_booking)" in refused.stderr


def test_the_index_gives_each_chapter_its_opening_sentence_which_its_goals_may_refer_to(tmp_path):
    """Chapter 07's first goal, "to show that claim rather than assert it", names a claim its opening paragraph
    makes: the index shows that paragraph's first sentence above the goals, so the entry does not begin dangling."""
    import nbformat

    from yafdp.site import write_site

    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(
        "# 07 · Add a service\n\n*About 35 minutes.*\n\nThe [blog](https://example.com/blog)'s point: a new service "
        "joins by **subscribing**. Nobody else\nchanges.\n\nIn this chapter you will learn:\n\n"
        "1. to show that claim rather than assert it;\n2. to check it.\n")]
    nbformat.write(notebook, chapters / "07_add.ipynb")
    _course_chapter(chapters, "08_end", "Summary", 5, ["look back"])  # no opening paragraph: none shown
    index = write_site(tmp_path / "html", sorted(chapters.glob("*.ipynb"))).read_text()
    assert ('<p class="about">The blog&#x27;s point: a new service joins by <strong>subscribing</strong>.</p>'
            "<ol><li>to show that claim rather than assert it;</li>") in index
    assert "Nobody else" not in index and index.count('class="about"') == 1
