"""How the ``yafdp`` command meets SIGINT (Ctrl-C) and SIGTERM: it stops cleanly and says so in one line.

Only the standard library here: the console entry point (:mod:`yafdp.__main__`) installs this before it imports
anything else of the package, so that a signal however early in the command is held, then said.
"""

from __future__ import annotations

import signal


class SignalStop:
    """SIGINT and SIGTERM stop a command cleanly: the first raises ``KeyboardInterrupt`` (its message names the
    signal; what was kept is said by whoever handles it), later ones are ignored while it cleans up.

    Created, it installs its handler at once; a signal that comes before :meth:`arm` (while the package is
    imported) is held and raised by ``arm()``: raised inside the import of a C extension it could crash the
    interpreter (orjson's does). :meth:`restore` gives the handlers back as they were. Created outside the main
    thread (which alone receives signals) it changes nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.armed, self.held = False, None
        self.before = {s: signal.getsignal(s) for s in self.SIGNALS}
        try:
            for s in self.SIGNALS:
                signal.signal(s, self._stop)
        except ValueError:  # not the main thread: leave the handlers as they are
            self.before = {}

    def _stop(self, signum, frame) -> None:
        if not self.armed:
            self.held = signum
            return
        self._raise(signum)

    def _raise(self, signum) -> None:
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def arm(self) -> None:
        """From now on a signal stops the command at once; one held meanwhile does so now."""
        self.armed = True
        if self.held is not None and self.before:
            self._raise(self.held)

    def restore(self) -> None:
        """The handlers as they were before."""
        for s, handler in self.before.items():
            signal.signal(s, handler)
