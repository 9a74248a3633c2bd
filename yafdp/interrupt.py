"""How the ``yafdp`` command meets SIGINT (Ctrl-C) and SIGTERM: it stops cleanly and says so in one line.

Only the standard library here: the console entry point (:mod:`yafdp.__main__`) installs this before it imports
anything else of the package, so that a signal however early in the command is held, then said.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from importlib.machinery import ExtensionFileLoader


class SignalStop:
    """SIGINT and SIGTERM stop a command cleanly: the first raises ``KeyboardInterrupt`` (its message names the
    signal; what was kept is said by whoever handles it), later ones are ignored while it cleans up.

    Created, it installs its handler at once; a signal that comes before :meth:`arm` (while the command line is
    imported and reads its arguments) is held and raised by ``arm()``. So is one that comes while a C extension
    is being imported, whenever that is (a command imports what it needs as it goes), until the import is done:
    raised inside a C extension's initialisation (which may run Python code: orjson's imports ``uuid``) it could
    crash the interpreter, and did. :meth:`restore` gives the handlers, and the loader of C extensions, back as they
    were. Created outside the main thread (which alone receives signals) it changes nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.armed, self.held, self._in_extension = False, None, 0
        self.before = {s: signal.getsignal(s) for s in self.SIGNALS}
        try:
            for s in self.SIGNALS:
                signal.signal(s, self._stop)
        except ValueError:  # not the main thread: leave the handlers as they are
            self.before = {}
            return
        self._loader = {name: getattr(ExtensionFileLoader, name) for name in ("create_module", "exec_module")}
        for name, method in self._loader.items():
            setattr(ExtensionFileLoader, name, self._holding_signals(method))

    def _holding_signals(self, method):
        """``method`` of the C extensions' loader, with a signal that comes meanwhile held until it returns."""
        def held_meanwhile(loader, *args):
            self._in_extension += 1
            try:
                return method(loader, *args)
            finally:
                self._in_extension -= 1
                if not self._in_extension and self.armed and self.held is not None:
                    held, self.held = self.held, None
                    self._raise(held)
        return held_meanwhile

    def _stop(self, signum, frame) -> None:
        if not self.armed or self._in_extension:
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
        """The handlers, and the loader of C extensions, as they were before."""
        for s, handler in self.before.items():
            signal.signal(s, handler)
        for name, method in getattr(self, "_loader", {}).items():
            setattr(ExtensionFileLoader, name, method)


@contextmanager
def signals_held():
    """SIGINT and SIGTERM held while the block runs, then given to the handler that was there before, as if they
    came just after it: for a step that must not be cut in half (files renamed into place one after another).

    In a thread other than the main one (which alone may set handlers, and alone receives signals) it holds
    nothing."""
    held: list[int] = []
    try:
        before = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in SignalStop.SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(held):  # each once, in the order they came
            signal.raise_signal(signum)
