"""The ``yafdp`` command's entry point (and ``python -m yafdp``).

It imports nothing before the command line, so a Ctrl-C however early (while Python imports the package) is
said in one line, ``yafdp: interrupted``, exit 130, like one during a run; :func:`yafdp.cli.main` does the rest.
"""

import sys


def main() -> int:
    """Run the ``yafdp`` command line on ``sys.argv``; returns its exit code (see :func:`yafdp.cli.main`)."""
    try:
        from yafdp.cli import main as command_line

        return command_line()
    except KeyboardInterrupt:  # before yafdp.cli handles SIGINT itself, or after it gave the handler back
        print("yafdp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
