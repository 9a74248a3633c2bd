"""Shared fixtures: a writable copy of the shipped catalog to break on purpose; a moto server for the AWS side; a
`yafdp` command that stops where a test wants to signal or kill it. How many pytest-xdist workers ``-n auto``
starts. And the unit tier's rule: a test in tests/unit touches no moto, no process and no notebook."""

import ast
import json
import os
import threading
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR
from yafdp.workbook import UNUSED_IMPORTS, leave_out

# The test processes, like a chapter's worker, never import what yafdp.workbook.UNUSED_IMPORTS names (jsonschema's
# optional IRI format checks: 1.4 s of CPU in every process that imports nbformat, papermill or moto's CloudFormation;
# no test validates a "format": "iri").
leave_out(UNUSED_IMPORTS)

# Where `yafdp moto-server` announces itself (yafdp.backends.aws.moto_server.state_dir): a folder of this test process's
# own, inherited by the commands it starts, so that no test finds a moto server the user (or another test process)
# runs, and `--backend moto` without a server of the test's own behaves as on a machine with none.
os.environ["YAFDP_STATE_DIR"] = tempfile.mkdtemp(prefix="yafdp-state-")


class CatalogCopy:
    """A copy of ``data/`` in a temporary folder, with helpers to edit one service file."""

    def __init__(self, root: Path):
        self.root = root

    def read(self, service: str) -> dict:
        return json.loads((self.root / "services" / f"{service}.json").read_text())

    def write(self, service: str, document: dict) -> None:
        (self.root / "services" / f"{service}.json").write_text(json.dumps(document, indent=2))

    def edit(self, service: str, change) -> None:
        document = self.read(service)
        change(document)
        self.write(service, document)


@pytest.fixture
def catalog_copy(tmp_path) -> CatalogCopy:
    root = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, root)
    return CatalogCopy(root)


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory) -> Path:
    """A temporary folder shared by every process of this test run: under pytest-xdist every worker has its own
    session and temporary folder, all in the run's base folder, which this is (without xdist, the session's own).
    What a test builds there once, under a file lock, the other workers read (each copies what it changes)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def moto_url():
    """One moto server per test process (each deployment on it has its own prefix), with dummy
    credentials in the environment so nothing here can reach a real AWS account.

    Under pytest-xdist (``make test`` runs ``pytest -n auto``) every worker is a process with its own session,
    so each worker starts its own server on a free port: no two workers share moto's state."""
    from yafdp.backends.aws.moto_server import MotoServer

    saved = {k: os.environ.get(k) for k in DUMMY_AWS_ENVIRONMENT}
    os.environ.update(DUMMY_AWS_ENVIRONMENT)
    server = MotoServer()
    try:
        yield server.start()
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def clients(moto_url):
    """boto3 clients for the session's moto server."""
    from yafdp.backends.aws.clients import make_clients

    return make_clients(moto_url)


DUMMY_AWS_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                         "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}


def pytest_xdist_auto_num_workers(config):
    """``-n auto`` (``make test``) starts one worker more than the CPUs this process may run on.

    Much of the suite waits rather than computes: moto's long polls and visibility timeouts, runs started
    and then signalled or killed on purpose, notebook kernels starting. With one worker per CPU the CPUs sit
    idle through those waits; one more worker fills them (on the 2-core machine, with nothing else running,
    3 workers took 155 s where 2 took 175 s). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own implementation reads it
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus + 1


def pytest_collection_modifyitems(config, items):
    """The chapters' tests are collected first (the deployment chapters on moto, the longest, at their head),
    then the quick unit tests and doctests, then the rest.

    pytest-xdist's worksteal gives each worker a share of the collection in order, and an idle worker steals
    the tail of the share with the most tests left. The chapters run one after another on one worker (each
    chapter is executed once, its tests share it through the build folder), nearly a third of the suite's CPU:
    at the head of the first share they start at once, instead of a third of the way in and ending last, and
    the rest of that share is quick tests, not long ones stuck behind them. The order changes nothing else:
    every test stays independent of the others."""
    def rank(item) -> int:
        if item.path.name == "test_notebooks.py":
            return 0 if item.originalname == "test_deployment_chapters_execute_on_moto" else 1
        quick = "unit" in item.path.parts or "tests" not in item.path.parts  # tests/unit, and the doctests
        return 2 if quick else 3

    items.sort(key=rank)  # stable: within each rank, the collection's order


# The child side of PausedYafdp: run as `python -c`, before the console script, so it sees all of the command.
_PAUSE_BOOT = r"""
import os, runpy, sys
announce, release, event, match, nth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
sys.argv = sys.argv[6:]
seen, state = [], {"on": False}

def line(what):  # the ascii codec and its error handlers are built in: encoding imports nothing here
    return what[:200].replace("\n", " ").encode("ascii", "backslashreplace") + b"\n"

def pause(what):
    os.write(announce, line(what))
    os.read(release, 1)  # held here until the test did what it does at this point (a signal it sends lands here)

def seen_one(what):
    seen.append(what)
    if len(seen) == nth:
        state["on"] = False
        pause(what)

def audit(name, args):
    if state["on"] and event in ("*", name):
        what = name + " " + (str(args[0]) if args else "")
        if match in what:
            seen_one(what)

function = match.rpartition(".")[2]

def trace(frame, why, arg):  # called as each Python function starts while tracing is on: kept short
    code = frame.f_code
    if code.co_name == "main" and frame.f_globals.get("__name__") == "yafdp.__main__":
        sys.settrace(None)  # a call point turns it on again only inside the function that holds it (see watched)
        state["on"] = True
    elif code.co_name == function and state["on"] and event == "call" and \
            frame.f_globals.get("__name__", "") + "." + code.co_qualname == match:
        seen_one(match)

# A call point: tracing every call of the command (twice its CPU) is on only while the module-level function the
# point is (or is inside of) runs, and any function it makes that holds the point: once its module is imported,
# that function is replaced by one that traces its calls (the module and the function that returns the closure
# `module.f.<locals>.g` are found as the module is imported: a finder ahead of the others wraps its loader).
def holds_the_point(qualname):
    return match == qualname or match.startswith(qualname + ".")

def watched(function):
    def call_traced(*args, **kwargs):
        before = sys.gettrace()
        sys.settrace(trace)
        try:
            made = function(*args, **kwargs)
        finally:
            sys.settrace(before)
        if callable(made) and holds_the_point(f"{getattr(made, '__module__', '')}.{getattr(made, '__qualname__', '')}"):
            return watched(made)
        return made
    return call_traced

class Watch:
    def find_spec(self, name, path, target=None):
        if not match.startswith(name + "."):
            return None
        for finder in sys.meta_path:
            found = finder.find_spec(name, path, target) if finder is not self and hasattr(finder, "find_spec") else None
            if found is None:
                continue
            run_module = getattr(found.loader, "exec_module", None)
            def exec_module(module):
                run_module(module)
                first = match[len(name) + 1:].split(".")[0]
                function = module.__dict__.get(first)
                if getattr(function, "__module__", None) == name and getattr(function, "__qualname__", None) == first:
                    setattr(module, first, watched(function))
            if run_module is not None:
                found.loader.exec_module = exec_module
            return found
        return None

if sys.version_info < (3, 12):  # Python 3.12 raises the audit event time.sleep itself
    import time
    def sleep(seconds, sleep=time.sleep):
        sys.audit("time.sleep", seconds)
        sleep(seconds)
    time.sleep = sleep

sys.addaudithook(audit)
sys.settrace(trace)
if event == "call":
    sys.meta_path.insert(0, Watch())
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    if nth == 0:  # a survey: every point seen, one a line
        os.write(announce, b"".join(map(line, seen)))
"""


class PausedYafdp:
    """The `yafdp` console script in a child process, as a shell starts it (SIGINT's default action, as a terminal
    gives it), that stops at one point of the command and says so, so that a test signals or kills it exactly
    there: a handshake, never a sleep. The point is counted from the moment ``yafdp.__main__.main`` runs:

    - ``event`` an audit event (``"open"``, ``"import"``, ``"sqlite3.connect"``, ``"os.rename"``, ``"time.sleep"``
      (Python 3.12's, raised here on 3.11 too), ...; ``"*"`` for any,
      https://docs.python.org/3/library/audit_events.html), whose text (``event first-argument``) holds ``match``;
      or ``"call"``, a call of the function ``match`` names (``module.qualified_name``);
    - ``nth``: the nth such point (``0``: never stop; :meth:`survey` lists them all).

    :meth:`reached` waits until the child stopped there and returns the point; the child stays stopped until
    :meth:`resume`. A signal sent meanwhile is handled at that point. Bytecode is not written (the points of two
    runs are the same)."""

    YAFDP = Path(sys.executable).with_name("yafdp")  # the console script pyproject.toml installs

    def __init__(self, args, *, event: str, match: str = "", nth: int = 1, cwd=None):
        announce_read, announce_write = os.pipe()
        release_read, self._release = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PAUSE_BOOT, str(announce_write), str(release_read), event, match, str(nth),
             str(self.YAFDP), *map(str, args)],
            pass_fds=(announce_write, release_read), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=cwd, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(announce_write)
        os.close(release_read)
        self._announce = os.fdopen(announce_read, "rb")
        self.pid = self.process.pid

    def reached(self) -> str:
        """The point the child stopped at, once it is there. AssertionError if it ended without reaching it."""
        line = self._announce.readline()
        if not line:
            _, stderr = self.process.communicate(timeout=600)
            raise AssertionError(f"yafdp ended (exit {self.process.returncode}) before the point:\n{stderr}")
        return line.rstrip(b"\n").decode()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def resume(self) -> None:
        """Let the child go on from its point (nothing happens if it has ended meanwhile)."""
        try:
            os.write(self._release, b"x")
        except BrokenPipeError:
            pass

    def finish(self, timeout: float = 600) -> subprocess.CompletedProcess:
        """Resume the child and wait for its end: ``returncode``, ``stdout`` and ``stderr``."""
        self.resume()
        stdout, stderr = self.process.communicate(timeout=timeout)
        self.close()
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr)

    def kill(self) -> None:
        """SIGKILL where it stands, and wait for it."""
        self.process.kill()
        self.process.communicate(timeout=600)
        self.close()

    def close(self) -> None:
        for stream in (self._announce,):
            stream.close()
        try:
            os.close(self._release)
        except OSError:
            pass

    @classmethod
    def survey(cls, args, *, event: str = "*", match: str = "", cwd=None) -> list[str]:
        """Every point of ``yafdp ARGS`` that ``event`` and ``match`` select, in order, from a run that does not
        stop (it must succeed)."""
        child = cls(args, event=event, match=match, nth=0, cwd=cwd)
        points = [line.rstrip(b"\n").decode() for line in child._announce]
        done = child.finish()
        assert done.returncode == 0, done.stderr
        return points


@pytest.fixture
def paused_yafdp():
    """:class:`PausedYafdp`; any child still running at the end of the test is killed."""
    started = []

    def start(args, **point) -> PausedYafdp:
        child = PausedYafdp(args, **point)
        started.append(child)
        return child

    start.survey = PausedYafdp.survey
    yield start
    for child in started:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()


# The unit tier (`pytest tests/unit`, seconds) runs in this process alone: no AWS emulator, no process, no notebook
# kernel, no socket. A test that needs one belongs in tests/integration (or tests/notebooks).
UNIT_TIER = Path(__file__).parent / "unit"
NOT_IN_UNIT_TESTS = ("moto", "boto3", "botocore", "subprocess", "multiprocessing", "papermill", "nbformat", "nbclient",
                     "nbconvert", "jupyter_client", "yafdp.workbook", "yafdp.backends.aws.moto_server")
# Python's audit events (https://docs.python.org/3/library/audit_events.html) for a process started or a socket
# used: what a moto server, a subprocess or a kernel needs.
NOT_IN_A_UNIT_TEST = ("subprocess.Popen", "os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
                      "pty.spawn", "socket.bind", "socket.connect")
_unit_test_running = threading.Event()


def _in_unit_tier(item) -> bool:
    return UNIT_TIER in Path(item.path).parents


def _forbidden_imports(path: Path) -> list[str]:
    """The modules of NOT_IN_UNIT_TESTS (or their submodules) that ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in NOT_IN_UNIT_TESTS))


def _refuse_in_unit_tests(event: str, args) -> None:
    if event in NOT_IN_A_UNIT_TEST and _unit_test_running.is_set() and threading.current_thread() is threading.main_thread():
        raise RuntimeError(f"a unit test may not start a process or use a socket ({event} {args[0] if args else ''}): "
                           f"it belongs in tests/integration")


sys.addaudithook(_refuse_in_unit_tests)


def pytest_collectstart(collector):
    """A module of tests/unit that imports moto, boto3, subprocess, a notebook runner... is refused at collection."""
    path = Path(getattr(collector, "path", "") or "")
    if isinstance(collector, pytest.Module) and UNIT_TIER in path.parents:
        forbidden = _forbidden_imports(path)
        if forbidden:
            raise pytest.UsageError(f"{path.relative_to(UNIT_TIER.parent.parent)} imports {', '.join(forbidden)}: the "
                                    f"unit tier touches no moto, subprocess or notebook; move the test to "
                                    f"tests/integration")


def pytest_itemcollected(item):
    """A test of tests/unit that asks for the moto server is refused at collection."""
    if _in_unit_tier(item) and {"moto_url", "clients"} & set(getattr(item, "fixturenames", ())):
        raise pytest.UsageError(f"{item.nodeid} uses the moto server: the unit tier touches no moto; move the test "
                                f"to tests/integration")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """While a test of tests/unit is set up, runs and is torn down, starting a process or using a socket raises."""
    if _in_unit_tier(item):
        _unit_test_running.set()
    try:
        yield
    finally:
        _unit_test_running.clear()
