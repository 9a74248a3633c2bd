"""The ``yafdp`` command's entry point (and ``python -m yafdp``).

The first thing it does is handle SIGINT and SIGTERM (:class:`yafdp.interrupt.SignalStop`, the standard library
alone), then it imports the command line: a Ctrl-C or a ``kill`` however early (while Python imports the package)
is said in one line, ``yafdp: interrupted``, exit 130, like one during a run; :func:`yafdp.cli.main` does the
rest. Before this module runs, Python itself is starting: a signal then is Python's to handle, not ours.
"""

import sys

from yafdp.interrupt import SignalStop


def main() -> int:
    """Run the ``yafdp`` command line on ``sys.argv``; returns its exit code (see :func:`yafdp.cli.main`)."""
    stop = SignalStop()  # first: from here on a signal is held until the command can stop cleanly
    try:
        from yafdp.cli import main as command_line

        return command_line(stop=stop)
    except KeyboardInterrupt:  # raised before yafdp.cli took over the held signal, or after it gave the handler back
        print("yafdp: interrupted", file=sys.stderr)
        return 130
    finally:
        stop.restore()


if __name__ == "__main__":
    sys.exit(main())
