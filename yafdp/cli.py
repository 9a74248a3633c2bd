"""The ``yafdp`` command line: one sub-command per job, each a thin call into the package."""

from __future__ import annotations

import argparse
import sys

from yafdp.patterns.cli import register as register_test_pattern


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yafdp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


COMMANDS: list = []
COMMANDS.append(register_test_pattern)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
