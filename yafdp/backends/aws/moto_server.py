"""A moto server (AWS's APIs, emulated) on a free loopback port inside this process, for offline runs.

moto keeps its state per process: every deployment on it has its own name prefix, so runs never collide.
Its server handles requests in parallel threads, but its DynamoDB does not apply a request atomically
(a transaction is checked and written item by item, and a cancelled one restores a copy of the whole table,
undoing what other requests wrote meanwhile). DynamoDB applies each request atomically and runs
transactions serializably ("TransactWriteItems is a synchronous write operation that groups up to 100
action requests ... The actions are completed atomically so that either all of them succeed, or all of
them fail", DynamoDB API Reference, TransactWriteItems), so here one DynamoDB request runs at a time:
what concurrent handlers see is what they would see on AWS. Its SQS is not thread-safe either, so SQS and
EventBridge requests run one at a time too, long polls waiting outside that (see :class:`OneRequestAtATime`).

A moto server's deployments live as long as its process. ``yafdp moto-server`` runs one that outlives the
commands, as an AWS account does, and announces it in a state file (:func:`state_dir`): ``yafdp deploy``, ``run``,
``export`` and ``destroy`` with ``--backend moto`` find it there (:func:`running_server`), so the user rehearses on
moto the same commands they run on AWS.
"""

from __future__ import annotations

import functools
import heapq
import io
import json
import logging
import os
import socket
import threading
import time
from copy import deepcopy
from pathlib import Path
from urllib.parse import urlsplit


class OneRequestAtATime:
    """WSGI middleware: DynamoDB requests (``X-Amz-Target: DynamoDB_20120810.*``) run one at a time, and so do
    SQS and EventBridge requests (``AmazonSQS.*``, ``AWSEvents.*``; EventBridge delivers to SQS targets inside
    ``PutEvents``), each group under its own lock; everything else in parallel.

    moto's SQS is not thread-safe: two ``ReceiveMessage`` calls at once can both take the message one of them moves
    to the dead-letter queue (``list.remove(x): x not in list``, a server error, seen at ``--concurrency 50``), and
    a ``DeleteMessage`` that rebuilds a queue's list loses a message sent meanwhile. SQS applies each request
    atomically. A long poll (``WaitTimeSeconds`` > 0) is not served holding the lock, which would stop every other
    SQS request for its seconds: it is asked as short polls, each under the lock, and waits between them (outside
    it) until a request that can add messages to its queue is served (a send, a visibility change, a ``PutEvents``,
    another receive that found some), or the visibility timeout a ``ChangeMessageVisibility`` gave a message ends
    (the message is visible again then: a failed batch given back comes back when SQS gives it back, not at the
    next recheck), or a second has passed (a message also becomes visible again when a timeout set otherwise
    ends), as moto's own long poll rechecks once a second. Such a request wakes one waiting poll of the queue, not
    all of them, so fifty pollers of a queue do not all ask at every message ("Amazon SQS short and long polling",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
    """

    RECHECK_SECONDS = 1.0
    ADDS_MESSAGES = {"AmazonSQS.SendMessage", "AmazonSQS.SendMessageBatch", "AmazonSQS.ChangeMessageVisibility",
                     "AmazonSQS.ChangeMessageVisibilityBatch", "AmazonSQS.SetQueueAttributes",
                     "AWSEvents.PutEvents"}
    # moto makes a message visible again once its clock is past the end of the timeout (whole milliseconds): a
    # poll woken this much later finds it.
    VISIBLE_AGAIN_MARGIN = 0.01

    def __init__(self, app):
        self.app = app
        self.dynamodb, self.queues = threading.Lock(), threading.Lock()
        self.waiting: dict[str, _Waiting] = {}  # queue name -> its long polls
        self.waiting_lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with self.dynamodb:
                return list(self.app(environ, start_response))
        if not target.startswith(("AmazonSQS.", "AWSEvents.")):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            request = json.loads(body or b"{}")
            queue = str(request.get("QueueUrl", "")).rstrip("/").rpartition("/")[2]
            wait = float(request.get("WaitTimeSeconds") or 0) if target == "AmazonSQS.ReceiveMessage" else 0.0
        except (ValueError, TypeError, AttributeError):  # moto answers a malformed request itself
            request, queue, wait = {}, "", 0.0
        if wait > 0:
            return self._long_poll(environ, start_response, request, queue, wait)
        status, headers, answer = self._serve(environ, body)
        if target in self.ADDS_MESSAGES and status.startswith("200"):
            for waiting in ([self._waiting(queue)] if queue else self._all_waiting()):
                waiting.wake()
            if queue:
                self._wake_when_visible_again(queue, target, request)
        start_response(status, headers)
        return [answer]

    def _wake_when_visible_again(self, queue: str, target: str, request: dict) -> None:
        """After a visibility change of ``queue``'s messages, a wake of one of its polls for the moment each
        message is visible again (a timeout of 0: now, which :meth:`__call__`'s wake already is)."""
        if target == "AmazonSQS.ChangeMessageVisibility":
            timeouts = [request.get("VisibilityTimeout")]
        elif target == "AmazonSQS.ChangeMessageVisibilityBatch":
            timeouts = [entry.get("VisibilityTimeout") for entry in request.get("Entries") or ()
                        if isinstance(entry, dict)]
        else:
            return
        now, waiting = time.monotonic(), self._waiting(queue)
        for seconds in {t for t in timeouts if isinstance(t, (int, float)) and t > 0}:
            waiting.wake_at(now + seconds + self.VISIBLE_AGAIN_MARGIN)

    def _serve(self, environ, body: bytes) -> tuple[str, list, bytes]:
        """One request under the SQS and EventBridge lock: its status, headers and body."""
        captured = []
        with self.queues:
            answer = b"".join(self.app({**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))},
                                       lambda status, headers, exc_info=None: captured.append((status, headers))))
        return (*captured[0], answer)

    def _long_poll(self, environ, start_response, request: dict, queue: str, wait: float):
        body = json.dumps({**request, "WaitTimeSeconds": 0}).encode()
        deadline = time.monotonic() + wait
        waiting = self._waiting(queue)
        while True:
            status, headers, answer = self._serve(environ, body)
            found = status.startswith("200") and _has_messages(answer)
            left = deadline - time.monotonic()
            if found or left <= 0 or not status.startswith("200"):
                if found:
                    waiting.wake()  # there may be more: the next poll of the queue looks
                start_response(status, headers)
                return [answer]
            waiting.wait(min(left, self.RECHECK_SECONDS))

    def _waiting(self, queue: str) -> "_Waiting":
        with self.waiting_lock:
            return self.waiting.setdefault(queue, _Waiting())

    def _all_waiting(self) -> list["_Waiting"]:
        with self.waiting_lock:
            return list(self.waiting.values())


class _Waiting:
    """The long polls waiting on one queue: :meth:`wake` lets one of them (or the next to come) ask again now,
    :meth:`wake_at` at a moment to come (:func:`time.monotonic`)."""

    def __init__(self):
        self.condition, self.wakes, self.due = threading.Condition(), 0, []

    def wake(self) -> None:
        with self.condition:
            self.wakes = min(self.wakes + 1, 10)  # a poll that comes later need not wait for what it missed
            self.condition.notify()

    def wake_at(self, moment: float) -> None:
        with self.condition:
            heapq.heappush(self.due, moment)
            self.condition.notify()  # a poll waiting past that moment waits until it instead

    def wait(self, seconds: float) -> None:
        """Return when woken (now, or at a moment that has come), or after ``seconds``."""
        end = time.monotonic() + seconds
        with self.condition:
            while True:
                if self.wakes > 0:
                    self.wakes -= 1
                    return
                now = time.monotonic()
                if self.due and self.due[0] <= now:
                    heapq.heappop(self.due)
                    return
                if now >= end:
                    return
                self.condition.wait(min(end, self.due[0] if self.due else end) - now)


def _has_messages(answer: bytes) -> bool:
    try:
        return bool(json.loads(answer).get("Messages"))
    except (ValueError, AttributeError):
        return True  # not what a receive answers: hand it back as it is


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
    """Start moto's threaded server on ``127.0.0.1`` and ``port`` (a free one by default); ``url`` is its endpoint.

    (Run in ``tests/integration/test_documented_examples.py``: a moto server listens on a loopback port.)
    """

    def __init__(self, port: int = 0):
        self._server = None
        self.port = port  # 0: a free one
        self.url: str | None = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        fifo_receive_in_group_order()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wsgi = self._server._server  # werkzeug's server: nothing has called it yet, so wrap its application now
        dispatcher = wsgi.app
        if hasattr(dispatcher, "get_backend_for_host"):
            # moto's dispatcher finds the backend of a request's host by listing its own package folder (a stat
            # per folder in it, some 280) on every request, under a lock every request takes; the answer for a
            # host never changes while the server runs, so it is worked out once per host.
            dispatcher.get_backend_for_host = functools.lru_cache(maxsize=None)(dispatcher.get_backend_for_host)
        wsgi.app = OneRequestAtATime(dispatcher)
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


# ---------------------------------------------------------------- the server that outlives a command

STATE_FILE = "moto-server.json"


def state_dir() -> Path:
    """Where yafdp keeps what outlives one command: ``$YAFDP_STATE_DIR``, else ``$XDG_STATE_HOME/yafdp``, else
    ``~/.local/state/yafdp`` (the XDG Base Directory specification's default for state data)."""
    if os.environ.get("YAFDP_STATE_DIR"):
        return Path(os.environ["YAFDP_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "yafdp"


def running_server() -> dict | None:
    """The moto server ``yafdp moto-server`` announced, ``{"url", "pid", "bus_url"}``, if its process is alive and its port
    answers; None otherwise (an announcement left by a server that died is removed)."""
    path = state_dir() / STATE_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        url, pid = found["url"], int(found["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(pid):
        path.unlink(missing_ok=True)
        return None
    return found if _answers(url) else None


def announce(url: str, **also: str) -> Path:
    """Write the announcement of this process's server at ``url`` (replaced whole, never half written), with what
    else it serves (``bus_url``: the Custom Event Bus served beside it)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path, partial = directory / STATE_FILE, directory / f".{STATE_FILE}.{os.getpid()}.tmp"
    partial.write_text(json.dumps({"url": url, "pid": os.getpid(), **also}), encoding="utf-8")
    os.replace(partial, path)
    return path


def withdraw(url: str) -> None:
    """Remove this process's announcement of ``url`` (not another server's, announced since)."""
    path = state_dir() / STATE_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if found.get("url") == url and found.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=2):
            return True
    except OSError:
        return False
