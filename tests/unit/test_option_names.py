"""Every command line the project quotes (in a message, a docstring, the README or a notebook: `` `yafdp export
--force …` ``) names a command that exists and options that command takes: `yafdp export` once said "pass
--force", an option it did not have. (The messages a command prints are checked the same way as they are printed,
in tests/integration/test_cli_bad_input.py.)"""

import re
from pathlib import Path

import pytest

from yafdp.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = next(a for a in build_parser()._actions if a.choices).choices
QUOTED = re.compile(r"`yafdp ([a-z][a-z-]*)(?=[ `])([^`\n]*)`")
OPTION = re.compile(r"(?<![\w/.-])--[a-z][a-z-]*")
FILES = sorted([*(ROOT / "yafdp").rglob("*.py"), ROOT / "README.md", *(ROOT / "notebooks").glob("*.ipynb")])


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_quoted_command_line_names_options_its_command_takes(path):
    wrong = []
    for command, rest in QUOTED.findall(path.read_text(encoding="utf-8")):
        if command not in COMMANDS:
            wrong.append(f"yafdp {command}: no such command")
            continue
        takes = {name for action in COMMANDS[command]._actions for name in action.option_strings}
        wrong += [f"yafdp {command}{rest}: {option}" for option in OPTION.findall(rest) if option not in takes]
    assert not wrong, wrong
