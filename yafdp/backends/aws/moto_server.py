"""A moto server (AWS's APIs, emulated) on a free loopback port inside this process, for offline runs.

moto keeps its state per process: every deployment on it has its own name prefix, so runs never collide.
Its server handles requests in parallel threads, but its DynamoDB does not apply a request atomically
(a transaction is checked and written item by item, and a cancelled one restores a copy of the whole table,
undoing what other requests wrote meanwhile). DynamoDB applies each request atomically and runs
transactions serializably ("TransactWriteItems is a synchronous write operation that groups up to 100
action requests ... The actions are completed atomically so that either all of them succeed, or all of
them fail", DynamoDB API Reference, TransactWriteItems), so here one DynamoDB request runs at a time:
what concurrent handlers see is what they would see on AWS.

A moto server's deployments live as long as its process. ``yafdp moto-server`` runs one that outlives the
commands, as an AWS account does, and announces it in a state file (:func:`state_dir`): ``yafdp deploy``, ``run``,
``export`` and ``destroy`` with ``--backend moto`` find it there (:func:`running_server`), so the user rehearses on
moto the same commands they run on AWS.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit


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
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
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
    """The moto server ``yafdp moto-server`` announced, ``{"url", "pid"}``, if its process is alive and its port
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


def announce(url: str) -> Path:
    """Write the announcement of this process's server at ``url`` (replaced whole, never half written)."""
    directory = state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path, partial = directory / STATE_FILE, directory / f".{STATE_FILE}.{os.getpid()}.tmp"
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
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
