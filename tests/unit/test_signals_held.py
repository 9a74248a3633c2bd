"""yafdp.interrupt.signals_held: a signal that comes during a step that must not be cut in half waits for its end."""

import os
import signal

from yafdp.interrupt import signals_held


def test_a_signal_during_the_block_reaches_the_handler_before_it_once_the_block_ends():
    seen = []
    def handler(signum, frame):
        seen.append(("handled", signum))

    before = signal.signal(signal.SIGINT, handler)
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)  # delivered here, to the holding handler (the main thread's next step)
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("the block ended")
        assert seen == ["the block ended", ("handled", signal.SIGINT)]  # once, after the block
        assert signal.getsignal(signal.SIGINT) is handler  # given back
    finally:
        signal.signal(signal.SIGINT, before)
