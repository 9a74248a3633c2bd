"""Progress bars where people wait, and nowhere else: on a terminal, with the total and the time left; not in a pipe
or a CI log; in a notebook driven by JupyterLab, not in one executed by papermill."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

YAFDP = Path(sys.executable).with_name("yafdp")
BAR = re.compile(r"orders ended: 100%\|[^|]*\| 40/40 \[\d\d:\d\d<\d\d:\d\d, [\d.]+ orders/s, [\d,]+ deliveries\]")


def _run_with_stderr_on_a_terminal(command, cwd, **environment) -> tuple[int, str]:
    """Run ``command`` with its standard error on a pseudo-terminal (as in a shell), and return its exit code and
    everything it wrote there."""
    main, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 rows of 160 columns
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
                               env={**os.environ, **environment})
    os.close(terminal)
    written = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal (EIO on Linux)
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    return process.wait(timeout=300), written.decode("utf-8", "replace")


@pytest.mark.skipif(os.name != "posix", reason="a POSIX pseudo-terminal")
def test_a_run_on_a_terminal_shows_its_orders_with_the_total_and_the_time_left(tmp_path):
    code, written = _run_with_stderr_on_a_terminal([YAFDP, "run", "--orders", "40", "--out", "run"], tmp_path,
                                                   YAFDP_PROGRESS="")
    assert code == 0, written
    assert BAR.search(written), written


@pytest.mark.skipif(os.name != "posix", reason="a POSIX pseudo-terminal")
def test_no_bar_when_asked_for_none_or_for_json(tmp_path):
    code, written = _run_with_stderr_on_a_terminal([YAFDP, "run", "--orders", "40", "--out", "quiet"], tmp_path,
                                                   YAFDP_PROGRESS="0")
    assert code == 0 and written == "", written
    code, written = _run_with_stderr_on_a_terminal([YAFDP, "run", "--orders", "40", "--out", "json", "--json"],
                                                   tmp_path, YAFDP_PROGRESS="")
    assert code == 0 and written == "", written


def test_no_bar_in_a_pipe_as_in_a_ci_log(tmp_path):
    result = subprocess.run([YAFDP, "run", "--orders", "40", "--out", "run"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "YAFDP_PROGRESS": ""}, timeout=300)
    assert result.returncode == 0 and result.stderr == ""


def test_yafdp_progress_1_shows_the_bar_in_a_pipe_too(tmp_path):
    result = subprocess.run([YAFDP, "run", "--orders", "40", "--out", "run"], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, "YAFDP_PROGRESS": "1"}, timeout=300)
    assert result.returncode == 0 and BAR.search(result.stderr), result.stderr


@pytest.mark.notebook
def test_a_notebook_shows_bars_to_a_front_end_that_takes_input_and_not_to_papermill():
    """JupyterLab sends each cell with ``allow_stdin`` true; nbclient (papermill, nbconvert) with it false. The kernel
    is started as the workbook starts a chapter's (sockets of its own: no TCP port another test's kernel could be
    handed at the same moment)."""
    import asyncio

    from yafdp.workbook import kernel_manager_class

    async def ask_twice():
        manager = kernel_manager_class()(kernel_name="python3")
        await manager.start_kernel(env={**os.environ, "YAFDP_PROGRESS": "", "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
                                   extra_arguments=["--IPKernelApp.log_level=ERROR"])
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=600)
            said = {}
            for allow_stdin in (True, False):
                lines = []
                reply = await client.execute_interactive(
                    "from yafdp.progress import showing_progress; print(showing_progress())",
                    allow_stdin=allow_stdin, timeout=300,
                    output_hook=lambda message: lines.append(message["content"].get("text", "")))
                assert reply["content"]["status"] == "ok", reply
                said[allow_stdin] = "".join(lines).strip()
            return said
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    assert asyncio.run(ask_twice()) == {True: "True", False: "False"}
