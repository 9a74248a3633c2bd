"""A moto server (AWS's APIs, emulated) on a free loopback port inside this process, for offline runs.

moto keeps its state per process: every deployment on it has its own name prefix, so runs never collide.
"""

from __future__ import annotations

import logging


class MotoServer:
    """Start moto's threaded server on ``127.0.0.1`` and a free port; ``url`` is its endpoint.

    (Run in ``tests/integration/test_documented_examples.py``: a moto server listens on a loopback port.)
    """

    def __init__(self):
        self._server = None
        self.url: str | None = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
