"""The Custom Event Bus served over HTTP on AWS's wire protocol (:mod:`yafdp.custom_event_bus.wire`), so that
boto3's own ``eventbridgev2`` client, the AWS CLI or any SDK can use it: ``yafdp serve``.

It is a face on the one engine, :class:`~yafdp.custom_event_bus.service.CustomEventBusService`, not a second
bus: every request runs the engine's operation while holding ``lock``, the lock the bus's clock
(:class:`~yafdp.custom_event_bus.clock.RealTimeClock`) holds for what it runs, so the engine is never run by
two threads at once. It accepts any credentials and checks no signature (SigV4): it is for a laptop and a test
suite, which is why it listens on a loopback address unless told otherwise twice (see ``yafdp serve --help``).

What a client sends wrong is answered in AWS's error shape and the server goes on serving: a body that is not
CBOR, a member the model requires or does not know, a value out of the model's range, a body over
``max_body_bytes``, more requests at once than ``max_concurrent_requests`` (``ThrottlingException``, 429, which
the SDKs retry with backoff), an unexpected failure of the engine (``InternalException``, 500).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from yafdp.custom_event_bus import wire
from yafdp.custom_event_bus.errors import ApiError
from yafdp.custom_event_bus.service import OPERATIONS, CustomEventBusService

log = logging.getLogger(__name__)

# The largest request body read. AWS does not document the eventsv2 endpoint's HTTP limit; a PutEvents request
# may carry 1 MB of entries (M PutEvents), which its CBOR framing (member names, SystemMetadata) makes somewhat
# larger: twice that is read, and PutEvents' own 1 MB check refuses what is over it. A choice, a setting.
MAX_BODY_BYTES = 2 * 1_048_576
MAX_CONCURRENT_REQUESTS = 32  # requests handled at once; the next is answered ThrottlingException (a choice)
_DRAIN_CHUNK = 65_536
_IDLE_SECONDS = 30.0  # a kept-alive connection with no request for this long is closed
# Not AWS's: how many events the bus's subscribers have still to deliver (GET, answered {"undelivered": n}), for a
# run in another process to know when the saga is settled (a run in this process asks the engine itself).
UNDELIVERED_PATH = "/_yafdp/undelivered"


class CustomEventBusEndpoint:
    """An HTTP server for ``service`` on ``host``:``port`` (0: a free port), started by :meth:`start`; its base URL
    is :attr:`url` (what ``boto3.client("eventbridgev2", endpoint_url=...)`` takes). :meth:`stop` (or leaving the
    ``with`` block) stops accepting, closes the connections still open and returns once no request is running.

    ``requests`` counts the requests answered, by HTTP status.
    """

    def __init__(self, service: CustomEventBusService, lock, *, host: str = "127.0.0.1", port: int = 0,
                 max_body_bytes: int = MAX_BODY_BYTES, max_concurrent_requests: int = MAX_CONCURRENT_REQUESTS):
        self.service, self.lock = service, lock
        self.max_body_bytes = max_body_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent_requests)
        self.max_concurrent_requests = max_concurrent_requests
        self.requests: dict[int, int] = {}
        self._counting = threading.Lock()
        self._server = _Server((host, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host if ':' not in host else f'[{host}]'}:{port}"

    def start(self) -> "CustomEventBusEndpoint":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="custom event bus endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> "CustomEventBusEndpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def answered(self, status: int) -> None:
        with self._counting:
            self.requests[status] = self.requests.get(status, 0) + 1

    # ---------------------------------------------------------------- one request

    def handle(self, path: str, headers, body: bytes) -> tuple[int, bytes]:
        """``(status, body)`` for a POST of ``body`` to ``path``."""
        try:
            operation = wire.operation_of(path)
            protocol = headers.get(wire.PROTOCOL_HEADER)
            if protocol != wire.PROTOCOL:
                raise wire.WireError("UnknownOperationException", 404, f"the request must carry the header "
                                     f"{wire.PROTOCOL_HEADER}: {wire.PROTOCOL} (got {protocol!r}): this endpoint "
                                     "speaks the Smithy RPC v2 CBOR protocol only")
            if headers.get("x-amz-target") or headers.get("x-amzn-target"):
                raise wire.WireError("UnknownOperationException", 404, "an RPC v2 CBOR request must not carry "
                                     "X-Amz-Target: the operation is in the path")
            request = wire.read_request(operation, body)
            with self.lock:
                answer = getattr(self.service, OPERATIONS[operation])(**request)
            return 200, wire.encode(answer)
        except ApiError as exc:
            return exc.status, wire.error_body(exc.code, exc.message)
        except wire.WireError as exc:
            return exc.status, wire.error_body(exc.code, exc.message)
        except Exception as exc:  # the engine failed: the client hears AWS's InternalException, the server goes on
            log.exception("the Custom Event Bus failed on a request to %s", path)
            return 500, wire.error_body("InternalException", f"the emulator failed: {type(exc).__name__}: {exc}")


class _Server(ThreadingHTTPServer):
    """One thread per connection (kept alive between requests), connections tracked so :meth:`close_connections`
    can end them."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address, handler):
        self.connections: set[socket.socket] = set()
        self._guard = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self._guard:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._guard:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        """A connection that broke (the client went away mid-answer): noted, not printed as a traceback."""
        log.debug("the connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._guard:
            open_ = list(self.connections)
        for connection in open_:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _handler(endpoint: CustomEventBusEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
        server_version = "yafdp-custom-event-bus"
        timeout = _IDLE_SECONDS

        def do_POST(self) -> None:
            if not endpoint._slots.acquire(blocking=False):
                self._drain()
                self._answer(429, wire.error_body("ThrottlingException", f"the endpoint is handling "
                                                  f"{endpoint.max_concurrent_requests} requests at once: retry later"))
                return
            try:
                body = self._body()
                if body is not None:
                    self._answer(*endpoint.handle(self.path, self.headers, body))
            finally:
                endpoint._slots.release()

        def _body(self) -> bytes | None:
            length = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked" or length is None:
                if self.headers.get("Transfer-Encoding") is None and length is None:
                    return b""  # no body at all: an empty input
                self.close_connection = True
                self._answer(400, wire.error_body("SerializationException", "send the body with a Content-Length "
                                                  "(chunked transfer encoding is not read here)"))
                return None
            if not length.isdigit():
                self.close_connection = True
                self._answer(400, wire.error_body("SerializationException", f"Content-Length {length!r} is not a "
                                                  "number of bytes"))
                return None
            size = int(length)
            if size > endpoint.max_body_bytes:
                self._drain()
                self._answer(400, wire.error_body("InvalidInputException", f"the request body is {size:,} bytes; "
                                                  f"this endpoint reads at most {endpoint.max_body_bytes:,} (a "
                                                  "PutEvents request may carry at most 1 MB of entries)"))
                return None
            return self.rfile.read(size)

        def _drain(self) -> None:
            """Read (and drop) the body, so the client can read the answer: at most 16 times the limit, then the
            connection is closed after the answer."""
            length = self.headers.get("Content-Length", "")
            left = int(length) if length.isdigit() else 0
            if left > 16 * endpoint.max_body_bytes:
                self.close_connection = True
                return
            while left > 0:
                chunk = self.rfile.read(min(left, _DRAIN_CHUNK))
                if not chunk:
                    break
                left -= len(chunk)

        def _not_post(self) -> None:
            self._drain()
            self._answer(405, wire.error_body("MethodNotAllowedException", f"{self.command} is not allowed: the "
                                              "Custom Event Bus takes POST /service/AWSEventsV2/operation/<Operation>"))

        do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_post

        def do_GET(self) -> None:
            if self.path != UNDELIVERED_PATH:
                self._not_post()
                return
            with endpoint.lock:
                count = endpoint.service.undelivered()
            self._answer(200, json.dumps({"undelivered": count}).encode(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str = wire.CONTENT_TYPE) -> None:
            endpoint.answered(status)  # counted before the client can read the answer (and count it itself)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header(wire.PROTOCOL_HEADER, wire.PROTOCOL)
            self.send_header("x-amzn-requestid", str(uuid.uuid4()))
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # one line per request otherwise, on stderr
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
