"""The peer the benchmarks measure in the same run: the package as it was at an earlier revision, from git."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The last commit before the bus and the latency model were reworked for speed (issue 15, second session).
BASELINE_REV = "103ea37"


def checkout(rev: str = BASELINE_REV) -> Path | None:
    """``yafdp/`` and ``data/`` as they were at ``rev`` (``git archive`` into a temporary folder), to put first on
    a child's ``PYTHONPATH``; None when this clone does not have that revision (e.g. a shallow clone)."""
    folder = Path(tempfile.mkdtemp(prefix="yafdp-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "yafdp", "data"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def child_env(pythonpath: Path | None) -> dict:
    """The environment of a child process that imports ``yafdp`` from ``pythonpath`` (this checkout when None)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pythonpath or ROOT)
    return env
