"""How the `yafdp` process ends, through the real command: a reader of stdout that went away is SIGPIPE's exit
(141, silent, the run kept), and a Ctrl-C at any moment after Python hands over to the entry point is one line,
`yafdp: interrupted`, exit 130, never a traceback from the middle of an import."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import yafdp

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals and pipes")]
YAFDP = Path(sys.executable).with_name("yafdp")  # the console script pyproject.toml installs
PACKAGE = Path(yafdp.__file__).parent


def test_a_closed_stdout_ends_the_command_silently_with_sigpipes_exit_and_the_run_is_kept(tmp_path):
    for command in (["run", "--orders", 200, "--out", tmp_path / "run"],
                    ["run", "--orders", 200, "--out", tmp_path / "json", "--json"],
                    ["catalog", "--format", "json"]):
        process = subprocess.Popen([YAFDP, *map(str, command)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True)
        process.stdout.close()  # as `| head -1` does once it has its line: every write now meets a closed pipe
        stderr = process.stderr.read()
        assert process.wait(timeout=120) == 141, stderr
        assert stderr == ""  # not `yafdp: Broken pipe`, and not exit 2, which says an input was refused
    for run in ("run", "json"):
        assert sorted(p.name for p in (tmp_path / run).iterdir() if not p.name.startswith(".")) == \
            ["catalog.json", "run.db", "summary.json"]


def test_a_pipe_to_head_reports_sigpipe_through_a_shell(tmp_path):
    result = subprocess.run(["bash", "-c", f"set -o pipefail; '{YAFDP}' catalog --format json | head -c 1 >/dev/null"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode in (0, 141) and result.stderr == ""  # 0 when head read everything before closing


def _reached_yafdp(result: subprocess.CompletedProcess) -> bool:
    """Whether the SIGINT landed once Python ran yafdp's code. Before that, Python is starting (its handler not
    installed yet, site-packages being read) or the console script is still finding the entry point module: a
    traceback there has no frame in the package, and nothing of ours can catch it."""
    if result.returncode == -signal.SIGINT and not result.stderr:
        return False  # killed before Python installed its handler: no output at all
    return "Traceback" not in result.stderr or f'File "{PACKAGE}' in result.stderr


def test_sigint_at_any_moment_of_the_start_is_one_line_and_exit_130(tmp_path):
    out = tmp_path / "run"
    landed = 0
    for step in range(40):  # every 7.5 ms over the first 0.3 s: the interpreter's start, the imports, the run's start
        delay = step * 0.0075
        # SIGINT's default action, as a terminal gives it (a suite started with `make test &` ignores SIGINT).
        process = subprocess.Popen([YAFDP, "run", "--orders", "20000", "--out", str(out), "--force"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        result = subprocess.CompletedProcess(process.args, process.returncode, "", stderr)
        if not _reached_yafdp(result):
            continue
        landed += 1
        assert "Traceback" not in stderr, f"SIGINT after {delay:.4f} s:\n{stderr}"
        assert process.returncode == 130 and len(stderr.splitlines()) == 1, (delay, process.returncode, stderr)
        assert stderr.startswith("yafdp: interrupted"), stderr
    assert landed >= 15  # most of them landed in yafdp's own start (the imports take ~0.15 s), not Python's
