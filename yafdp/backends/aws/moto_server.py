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


def free_fifo_groups_once_visible() -> None:
    """Correct moto's SQS (in this process) so that a FIFO message group is blocked only while one of its messages is
    in flight, as SQS blocks it ("you can't receive messages from a message group while messages from that group are
    in flight"; a message whose visibility timeout ended is visible again, SQS developer guide, "FIFO queue delivery
    logic" and "Amazon SQS visibility timeout").

    moto 5.2's ``ReceiveMessage`` counts a group as in flight while any of its messages is in the queue's set of
    pending messages, and takes a message out of that set only when its loop reaches it: when several messages of a
    group were in flight and their timeouts all ended (a failed batch left on the queue, as Lambda leaves the rest of
    a FIFO batch after its first failure), it skips the first ones (the later ones still look in flight) and hands
    out the last one first: the group out of order. Here a pending message that is visible again no longer holds
    its group. Idempotent."""
    from moto.sqs.models import Queue

    if getattr(Queue, "_yafdp_groups_free_once_visible", False):
        return

    def pending_message_groups(self) -> set[str]:
        return {m.group_id for m in self._pending_messages if m.group_id is not None and not m.visible}

    Queue.pending_message_groups = property(pending_message_groups)
    Queue._yafdp_groups_free_once_visible = True


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
        free_fifo_groups_once_visible()
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
