"""README's "Your own saga", followed as a new user would: the very files it shows, written into an empty folder,
lint before the handlers exist, then the run and the check it says pass."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL, cwd=cwd)


def own_saga_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Your own saga"):text.index("\n## ", text.index("## Your own saga") + 3)]


def test_the_readme_walks_from_an_empty_folder_to_a_checked_run(tmp_path):
    section = own_saga_section()
    files = dict(re.findall(r"\*\*`([^`]+)`\*\*\n\n```\w+\n(.*?)```", section, flags=re.S))
    assert {"my-saga/bus.json", "my-saga/services/card.py", "requests.json"} <= set(files)
    for name, text in files.items():
        if name.endswith(".json"):
            json.loads(text)  # what the README shows is valid JSON
    for name, text in files.items():  # the documents first: the design, before any code
        if not name.endswith(".py"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(text)
    commands = re.findall(r"^yafdp (.+)$", section.split("A few requests to place")[1], flags=re.M)
    lint = cli(*commands[0].split(), cwd=tmp_path)
    assert lint.returncode == 0 and "stock-releases-item → Stock_Released" in lint.stdout
    assert "handler 'reserve' is not written yet" in lint.stderr
    refused = cli(*commands[1].split(), cwd=tmp_path)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 5  # one per missing handler
    for name, text in files.items():
        if name.endswith(".py"):
            (tmp_path / name).write_text(text)
    run = cli(*commands[1].split(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "3 of 3 requested orders placed (0 refused): 2 CANCELLED, 1 PAID" in run.stdout
    check = cli(*commands[2].split(), cwd=tmp_path)
    assert check.returncode == 0, check.stdout
    assert check.stdout.strip().splitlines()[-1].startswith("check: 10 passed, 0 failed, 0 skipped, 2 not applicable")
