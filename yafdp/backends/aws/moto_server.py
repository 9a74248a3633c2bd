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
import time
from copy import deepcopy


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


def fifo_receive_in_group_order() -> None:
    """Correct moto's ``ReceiveMessage`` on FIFO queues (in this process) to SQS's delivery logic: a message group
    whose message is in flight gives nothing out, and otherwise gives its messages out in the order they were sent
    ("you can't receive messages from a message group while messages from that group are in flight"; SQS developer
    guide, "FIFO queue delivery logic",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html).

    moto 5.2 takes a snapshot of the groups in flight, counts a message as in flight until its loop reaches it even
    when its visibility timeout has ended, and runs concurrent receives without a lock: when several messages of a
    group come back together (a FIFO batch failed, and Lambda leaves its later messages too), it skips the first
    ones and hands out the last one first; two receives at once can both take from one group. Here a FIFO queue's
    receives run one at a time, and each looks at every message once, at one moment: a group is blocked by a message
    not visible, or by an earlier message of it that is not given out; a message past its queue's
    ``maxReceiveCount`` moves to the dead-letter queue, as moto does. Standard queues are left to moto. Idempotent."""
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_yafdp_fifo_receive", False):
        return
    original, lock = SQSBackend.receive_message, threading.Lock()

    def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None):
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue:
            return original(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names)
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with lock:
                taken = _take_in_group_order(self, queue, queue_name, count, visibility_timeout,
                                             message_attribute_names or [])
            left = deadline - time.monotonic()
            if taken or left <= 0:
                return taken
            with queue._messages_lock:  # long polling: woken by a message sent, or looked at again soon
                queue._messages_lock.wait(timeout=min(left, 0.05))

    SQSBackend.receive_message = receive_message
    SQSBackend._yafdp_fifo_receive = True


def _take_in_group_order(backend, queue, queue_name: str, count: int, visibility_timeout, attribute_names: list) -> list:
    from moto.sqs.models import _filter_message_attributes

    seen = [(m, m.visible, m.delayed) for m in list(queue._messages)]  # one moment for every message
    blocked = {m.group_id for m, visible, _ in seen if not visible}
    queue.pending_messages.difference_update(m for m, visible, _ in seen if visible)  # their timeout ended
    taken, dead = [], []
    for message, visible, delayed in seen:
        if not visible or delayed or len(taken) >= count:
            continue
        if message.group_id in blocked:
            continue
        policy = queue.redrive_policy
        if queue.dead_letter_queue is not None and policy and message.approximate_receive_count >= policy["maxReceiveCount"]:
            dead.append(message)
            continue
        if not backend.is_message_valid_based_on_retention_period(queue_name, message):
            blocked.add(message.group_id)
            continue
        queue.pending_messages.add(message)
        message.mark_received(visibility_timeout=visibility_timeout)
        copy = deepcopy(message)
        _filter_message_attributes(copy, attribute_names)
        taken.append(copy)
    for message in dead:
        queue._messages.remove(message)
        queue.dead_letter_queue.add_message(message)
    return taken


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
        fifo_receive_in_group_order()
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
