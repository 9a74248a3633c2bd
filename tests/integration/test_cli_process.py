"""How the `yafdp` process ends, through the real command: a reader of stdout that went away is SIGPIPE's exit
(141, silent, the run kept), and a Ctrl-C or a SIGTERM at any moment after Python hands over to the entry point is
one line, `yafdp: interrupted`, exit 130, never a traceback from the middle of an import."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="POSIX signals and pipes")]
YAFDP = Path(sys.executable).with_name("yafdp")  # the console script pyproject.toml installs


def test_a_closed_stdout_ends_the_command_silently_with_sigpipes_exit_and_the_run_is_kept(tmp_path):
    for command in (["run", "--orders", 200, "--out", tmp_path / "run"],
                    ["run", "--orders", 200, "--out", tmp_path / "json", "--json"],
                    ["catalog", "--format", "json"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # as `| head -1` does once it has its line, here before the first write: each meets it
        process = subprocess.Popen([YAFDP, *map(str, command)], stdout=write_end, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True)
        os.close(write_end)
        stderr = process.stderr.read()
        assert process.wait(timeout=600) == 141, stderr
        assert stderr == ""  # not `yafdp: Broken pipe`, and not exit 2, which says an input was refused
    for run in ("run", "json"):
        assert sorted(p.name for p in (tmp_path / run).iterdir() if not p.name.startswith(".")) == \
            ["catalog.json", "run.db", "summary.json"]


def test_a_pipe_to_head_reports_sigpipe_through_a_shell(tmp_path):
    result = subprocess.run(["bash", "-c", f"set -o pipefail; '{YAFDP}' catalog --format json | head -c 1 >/dev/null"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 141) and result.stderr == ""  # 0 when head read everything before closing


def test_sigint_or_sigterm_at_any_moment_of_the_command_is_one_line_and_exit_130(tmp_path, paused_yafdp):
    """From the moment the console script hands over to ``yafdp.__main__.main`` (before that Python is starting,
    and a signal is Python's to handle): stopped at a point of the command, the child is sent SIGINT or SIGTERM
    there, then let go. Each time: one line, ``yafdp: interrupted``, exit 130, never a traceback.

    The points are audited steps of a run (each import, file opened, module compiled, database connected, file
    renamed...): the first ones, while the command line itself is imported, with both signals; then points spread
    evenly over the rest of the start, the run and its end, SIGINT and SIGTERM in turn."""
    # Run once first, so that every module the command imports has its bytecode written: the survey and each child
    # (which writes none) then find the same files, and the nth point is the same point in each (with a module
    # compiled in one and read from its bytecode in another, the points shift, and the last ones were not reached).
    assert subprocess.run([YAFDP, "run", "--orders", "1", "--out", tmp_path / "compiled"], capture_output=True,
                          timeout=600).returncode == 0
    points = paused_yafdp.survey(["run", "--orders", 1, "--out", tmp_path / "survey"])
    assert len(points) > 500  # the imports alone are hundreds of steps
    chosen = [(index, stop) for index in range(8) for stop in (signal.SIGINT, signal.SIGTERM)]
    chosen += [(index, (signal.SIGINT, signal.SIGTERM)[n % 2])
               for n, index in enumerate(sorted({8 + round(i * (len(points) - 9) / 15) for i in range(16)}))]
    for index, stop in chosen:
        child = paused_yafdp(["run", "--orders", 1, "--out", tmp_path / f"run{index}-{stop}"], event="*", nth=index + 1)
        point = child.reached()
        child.signal(stop)
        done = child.finish()
        where = f"{stop.name} at point {index} of {len(points)} ({point[:120]})"
        assert "Traceback" not in done.stderr, f"{where}:\n{done.stderr}"
        assert done.returncode == 130 and len(done.stderr.splitlines()) == 1, (where, done.returncode, done.stderr)
        assert done.stderr.startswith("yafdp: interrupted"), (where, done.stderr)
