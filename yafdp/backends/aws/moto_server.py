"""A moto server (AWS's APIs, emulated) on a free loopback port inside this process, for offline runs.

moto keeps its state per process: every deployment on it has its own name prefix, so runs never collide.
Its server handles requests in parallel threads, but its DynamoDB does not apply a request atomically
(a transaction is checked and written item by item, and a cancelled one restores a copy of the whole table,
undoing what other requests wrote meanwhile). DynamoDB applies each request atomically and runs
transactions serializably ("TransactWriteItems is a synchronous write operation that groups up to 100
action requests ... The actions are completed atomically so that either all of them succeed, or all of
them fail", DynamoDB API Reference, TransactWriteItems), so here one DynamoDB request runs at a time:
what concurrent handlers see is what they would see on AWS.
"""

from __future__ import annotations

import functools
import logging
import threading


class OneDynamoDBRequestAtATime:
    """WSGI middleware: DynamoDB requests (``X-Amz-Target: DynamoDB_20120810.*``) run one at a time, others
    in parallel."""

    def __init__(self, app):
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


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
        wsgi = self._server._server  # werkzeug's server: nothing has called it yet, so wrap its application now
        dispatcher = wsgi.app
        if hasattr(dispatcher, "get_backend_for_host"):
            # moto's dispatcher finds the backend of a request's host by listing its own package folder (a stat
            # per folder in it, some 280) on every request, under a lock every request takes; the answer for a
            # host never changes while the server runs, so it is worked out once per host.
            dispatcher.get_backend_for_host = functools.lru_cache(maxsize=None)(dispatcher.get_backend_for_host)
        wsgi.app = OneDynamoDBRequestAtATime(dispatcher)
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
