"""A run as OpenTelemetry traces, in the OTLP JSON file format: what ``yafdp trace DIR --format otlp`` writes.

One trace per order. Its root span (``order <id>``) covers the order from its first event to the last handler
that reacted to any of its events. Below it, the spans of the AWS pieces that carried it, with the attributes of
OpenTelemetry's semantic conventions where they exist (read from ``opentelemetry-semantic-conventions``):

- a PRODUCER span ``send <bus>`` per published event (PutEvents), the child of the handler that published it;
- per delivery attempt of an event to a rule's target, the function's invocation as a SERVER span named after
  the function (``faas.trigger`` ``pubsub``, ``faas.invocation_id`` the delivery's row in ``run.db``,
  ``aws.lambda.invoked_arn``), and in it the
  message as a CONSUMER span ``process <queue>`` (``messaging.system`` ``aws_sqs``, ``messaging.operation.type``
  ``process``, ``messaging.destination.name``, ``messaging.message.id`` the EventBridge event id) with a link
  to the ``send`` span of its event: the cause. This is the shape the conventions give a Lambda function fed by
  an SQS event source mapping, https://opentelemetry.io/docs/specs/semconv/faas/aws-lambda/ (SQS event: a SERVER
  span for the invocation; SQS message: a CONSUMER span per message, linked to its producer), and the SQS
  conventions, https://opentelemetry.io/docs/specs/semconv/messaging/sqs/.

EventBridge has no convention of its own: its ``send`` spans carry ``messaging.system`` ``aws.eventbridge``, a
value of ours in the form of the registry's newer AWS values (``aws.sns``). Whatever the conventions do not
name is under ``yafdp.*`` (the rule, the detail-type, the attempt and its outcome). A failed attempt's spans have
an ERROR status with ``error.type`` (the code before the first colon of the recorded error); dead letters are
span events on the root span.

Times: a run's clock counts seconds from its start. A local run's clock starts at its bus's origin,
2026-01-01T00:00:00Z (:data:`yafdp.runtime.envelope.CLOCK_ORIGIN`), not at a real date; a deployed run's at the
real time of its first event (its envelope ``time``, to the second). Under a latency model the times are
simulated: every span's resource says so (``yafdp.time.simulated``, ``yafdp.latency_model``, ``yafdp.times``).

The spans are made with the OpenTelemetry SDK (explicit start and end times) and written by OpenTelemetry's
OTLP JSON file exporter (``opentelemetry-exporter-otlp-json-file``): one ``ExportTraceServiceRequest`` per line,
one line per order, as the OTLP file exporter specifies (https://opentelemetry.io/docs/specs/otel/protocol/file-exporter/)
and an OpenTelemetry Collector's ``otlpjsonfile`` receiver reads.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import IO

from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.proto_json.collector.trace.v1.trace_service import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.semconv._incubating.attributes import aws_attributes as aws
from opentelemetry.semconv._incubating.attributes import cloud_attributes as cloud
from opentelemetry.semconv._incubating.attributes import faas_attributes as faas
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.semconv.attributes import error_attributes as error
from opentelemetry.semconv.attributes import service_attributes as service
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, set_span_in_context

from yafdp import __version__
from yafdp.progress import progress_bar
from yafdp.runtime import rundb
from yafdp.runtime.envelope import CLOCK_ORIGIN

EVENTBRIDGE = "aws.eventbridge"  # messaging.system of EventBridge: not in the registry (see the module's docstring)
NANOSECONDS = 1_000_000_000


def write_otlp(run_path: str | Path, stream: IO[str], catalog_dir: str | Path | None = None, *,
               progress: bool | None = None) -> dict:
    """Write the run in ``run_path`` (a run folder or its ``run.db``) to ``stream`` as OTLP JSON lines, one trace
    per order; return the counts written (``traces``, ``spans``, ``links``).

    ``progress``: a bar of the orders traced, on standard error (:func:`yafdp.progress.progress_bar`: None shows
    it where someone watches, so ``yafdp trace RUN > file`` on a terminal shows it); a run of many orders takes a
    while (about 2.5 ms of CPU per order here: some 27 spans each, made and encoded by the OpenTelemetry SDK).

    The names and ARNs (bus, queues, functions) are the deployment plan's, from the catalog the run was made with
    (``run_info.catalog_dir``, or ``catalog_dir``). Raises :class:`~yafdp.errors.RunFolderError` or
    :class:`~yafdp.runtime.rundb.MalformedRunError` when there is no readable run, and the catalog's
    :class:`~yafdp.catalog.CatalogError` when it does not load.
    """
    db = rundb.open_run(run_path)
    try:
        info = rundb.get_info(db)
        events = db.execute("SELECT seq, event_id, order_id, detail_type, source, published_at, published_by, time"
                            " FROM events ORDER BY seq").fetchall()
        deliveries = db.execute("SELECT d.event_id, d.rule, d.target, d.attempt, d.delivered_at, d.finished_at,"
                                " d.outcome, d.error, e.order_id, d.rowid FROM deliveries d JOIN events e USING (event_id)"
                                " ORDER BY d.delivered_at, d.rowid").fetchall()
        dead_letters = db.execute("SELECT l.event_id, l.rule, l.kind, l.error_code, l.error_message, l.dead_lettered_at,"
                                  " e.order_id FROM dead_letters l JOIN events e USING (event_id)"
                                  " ORDER BY l.dead_lettered_at").fetchall()
    finally:
        db.close()
    plan = _plan(info, catalog_dir)
    stream = _Writes(stream)
    writer = _TraceWriter(plan, info, _origin(info, events), FileSpanExporter(stream=stream), stream)
    by_order: dict[str, dict[str, list]] = defaultdict(lambda: {"events": [], "deliveries": [], "dead_letters": []})
    for row in events:
        by_order[row[2] or ""]["events"].append(row)
    for row in deliveries:
        by_order[row[8] or ""]["deliveries"].append(row)
    for row in dead_letters:
        by_order[row[6] or ""]["dead_letters"].append(row)
    with progress_bar(len(by_order), "orders traced", "orders", show=progress) as bar, _exporter_quiet():
        for order_id in sorted(by_order):
            writer.order(order_id, **by_order[order_id])
            bar.update()
    return writer.counts


def _plan(info: dict, catalog_dir):
    """The deployment plan the run's names come from: its catalog, prefix, Region and account."""
    from yafdp.catalog import load_catalog
    from yafdp.plan import build_plan
    from yafdp.plan.model import ACCOUNT, DEFAULT_PREFIX, REGION

    catalog = load_catalog(catalog_dir if catalog_dir is not None else info.get("catalog_dir"))
    return build_plan(catalog.without(*info.get("exclude_services", ())), info.get("prefix") or DEFAULT_PREFIX,
                      region=info.get("region") or REGION, account=info.get("account") or ACCOUNT)


def _origin(info: dict, events: list) -> float:
    """The Unix time (seconds) a run's clock reading 0 stands for: the local bus's origin, or for a deployed run
    the real time of its first event (envelope ``time`` is to the second) less its reading."""
    if info.get("backend", "local") == "local" or not events:
        return CLOCK_ORIGIN
    first = min(events, key=lambda row: row[5])
    return calendar.timegm(time.strptime(first[7], "%Y-%m-%dT%H:%M:%SZ")) - first[5]


class _Writes:
    """The stream the exporter writes to, keeping the error a write or flush raised. OpenTelemetry's OTLP JSON file
    exporter catches it, logs it with its traceback and answers FAILURE: a closed pipe or a full disk would otherwise
    go on as if written (``yafdp trace`` then said it wrote the file, and replaced an earlier one with a part). The
    writer raises it instead: a closed pipe ends the command quietly (exit 141), no room is one line and the earlier
    file kept (:func:`yafdp.runs.folder.save_output`)."""

    def __init__(self, stream: IO[str]):
        self.stream, self.error = stream, None

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except Exception as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        try:
            self.stream.flush()
        except Exception as exc:
            self.error = exc
            raise


@contextlib.contextmanager
def _exporter_quiet():
    """The exporter's logger silenced while a run is exported: a failed write is raised by :class:`_TraceWriter`, in
    one line, not logged with a traceback."""
    logger = logging.getLogger("opentelemetry.exporter.otlp.json.file.trace_exporter")
    was, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was


class _TraceWriter:
    """Makes each order's spans with the OpenTelemetry SDK and exports them as one OTLP request (one line)."""

    def __init__(self, plan, info: dict, origin: float, exporter, stream: "_Writes"):

        # Nanoseconds of the clock's origin, added to each reading's: a Unix time in float nanoseconds would lose the
        # readings' last digits (2**53 ns is 104 days), a common offset only shifts every span alike.
        self.plan, self.origin_ns, self.exporter, self.stream = plan, round(origin * NANOSECONDS), exporter, stream
        self.collected: list = []
        self.counts = {"traces": 0, "spans": 0, "links": 0}
        simulated = info.get("latency_model", "none") != "none"
        common = {cloud.CLOUD_PROVIDER: "aws", cloud.CLOUD_PLATFORM: "aws_lambda", cloud.CLOUD_REGION: plan.region,
                  cloud.CLOUD_ACCOUNT_ID: plan.account, "service.namespace": "yafdp",
                  "yafdp.backend": str(info.get("backend", "local")), "yafdp.time.simulated": simulated,
                  "yafdp.latency_model": str(info.get("latency_model", "none")),
                  "yafdp.times": str(info.get("times", "measured wall-clock seconds since the run started"))}
        self.tracers = {}
        for name in [s.name for s in plan.services] + ["yafdp"]:  # one resource per service (function), and the run's
            attributes = {**common, service.SERVICE_NAME: name}
            if name != "yafdp":
                attributes[faas.FAAS_NAME] = plan.service(name).function
            provider = TracerProvider(resource=Resource.create(attributes))
            provider.add_span_processor(_Collect(self.collected))
            self.tracers[name] = provider.get_tracer("yafdp.analysis.otlp", __version__)
        self.rules = {r.name: r for r in plan.rules}
        self.services = {s.name for s in plan.services}
        self.choreography = info.get("style", "choreography") == "choreography"

    def _ns(self, seconds: float) -> int:
        return self.origin_ns + round(seconds * NANOSECONDS)

    def _tracer(self, service: str | None):
        return self.tracers.get(service or "yafdp", self.tracers["yafdp"])

    def order(self, order_id: str, events: list, deliveries: list, dead_letters: list) -> None:
        """Make and export the trace of one order."""

        times = [e[5] for e in events] + [d[5] for d in deliveries] + [d[4] for d in deliveries]
        if not times:
            return
        sources = {s.source: s.name for s in self.plan.services}
        root = self._tracer(None).start_span(f"order {order_id}", kind=SpanKind.INTERNAL, start_time=self._ns(min(times)),
                                             attributes={"yafdp.order.id": order_id})
        for event_id, rule, kind, code, message, at, _ in dead_letters:
            root.add_event("dead-lettered", timestamp=self._ns(at),
                           attributes={"yafdp.rule": rule, "yafdp.dead_letter.kind": kind, messaging.MESSAGING_MESSAGE_ID:
                                       event_id, error.ERROR_TYPE: code, "yafdp.dead_letter.error": message})
        sent, handlers = {}, {}  # event id -> its send span; "rule#event id" -> the handler span that committed
        by_event = defaultdict(list)
        for row in deliveries:
            by_event[row[0]].append(row)
        for seq, event_id, _, detail_type, source, published_at, published_by, _ in events:
            parent = handlers.get(published_by or "", root)
            sent[event_id] = self._tracer(sources.get(source)).start_span(
                f"send {self.plan.bus}", kind=SpanKind.PRODUCER, context=set_span_in_context(parent),
                start_time=self._ns(published_at), attributes={
                    messaging.MESSAGING_SYSTEM: EVENTBRIDGE, messaging.MESSAGING_OPERATION_TYPE: "send",
                    messaging.MESSAGING_OPERATION_NAME: "PutEvents", messaging.MESSAGING_DESTINATION_NAME: self.plan.bus,
                    messaging.MESSAGING_MESSAGE_ID: event_id, "yafdp.event.detail_type": detail_type,
                    "yafdp.event.source": source, "yafdp.event.seq": seq, "yafdp.order.id": order_id,
                    # an event a schedule put on the bus (the saga's deadline) has no handler for a parent: it names
                    # the schedule, and hangs from the order's span
                    **({"yafdp.schedule": published_by[len("schedule#"):]}
                       if (published_by or "").startswith("schedule#") else {})})
            sent[event_id].end(end_time=self._ns(published_at))
            for delivery in by_event.get(event_id, ()):
                handler = self._delivery(delivery, sent[event_id], root, detail_type, published_at)
                if delivery[6] == "ok":
                    handlers[f"{delivery[1]}#{event_id}"] = handler
        root.set_attribute("yafdp.order.events", len(events))
        root.end(end_time=self._ns(max(times)))
        self.counts["traces"] += 1
        self.counts["spans"] += len(self.collected)
        # a failed write, which the exporter (silenced by write_otlp) swallowed, is raised here
        if self.exporter.export(self.collected) is not SpanExportResult.SUCCESS:
            raise self.stream.error or OSError(f"the OTLP exporter could not write the trace of order {order_id}")
        self.collected.clear()

    def _delivery(self, row, sent, root, detail_type: str, published_at: float):
        """The spans of one delivery attempt: the function's invocation (SERVER) and, on the choreography's
        topology, the message it processes (CONSUMER), linked to the ``send`` span of its event; return the
        invocation's span (the parent of what the handler published)."""

        event_id, rule, target, attempt, delivered_at, finished_at, outcome, failure, order_id, row_id = row
        plan_rule = self.rules.get(rule)
        known = target in self.services
        cause = Link(sent.get_span_context(), {"yafdp.cause": "the event this delivery carries"})
        queue = self.choreography and (plan_rule is None or plan_rule.target.kind == "queue")
        invocation = self._tracer(target).start_span(
            self.plan.service(target).function if known else target, kind=SpanKind.SERVER,
            context=set_span_in_context(root), links=[] if self.choreography else [cause],
            start_time=self._ns(delivered_at), attributes={
                faas.FAAS_TRIGGER: "pubsub" if self.choreography else "other",
                faas.FAAS_INVOCATION_ID: str(row_id),  # the delivery's row in run.db: unique, as a request id
                aws.AWS_LAMBDA_INVOKED_ARN: self.plan.function_arn(target) if known else "",
                "yafdp.rule": rule, "yafdp.handler": plan_rule.target.handler if plan_rule else "",
                "yafdp.delivery.attempt": attempt, "yafdp.delivery.outcome": outcome, "yafdp.order.id": order_id})
        spans = [invocation]
        if self.choreography:
            destination = plan_rule.target.queue if plan_rule is not None and queue else self.plan.bus
            spans.append(self._tracer(target).start_span(
                f"process {destination}", kind=SpanKind.CONSUMER, context=set_span_in_context(invocation),
                links=[cause], start_time=self._ns(delivered_at), attributes={
                    messaging.MESSAGING_SYSTEM: "aws_sqs" if queue else EVENTBRIDGE,
                    messaging.MESSAGING_OPERATION_TYPE: "process", messaging.MESSAGING_OPERATION_NAME: "process",
                    messaging.MESSAGING_DESTINATION_NAME: destination, messaging.MESSAGING_MESSAGE_ID: event_id,
                    "yafdp.event.detail_type": detail_type, "yafdp.delivery.attempt": attempt,
                    "yafdp.delivery.latency_ms": round((delivered_at - published_at) * 1000, 3)}))
        self.counts["links"] += 1
        for span in reversed(spans):
            if outcome in ("failed", "dead_lettered"):
                span.set_attribute(error.ERROR_TYPE, (failure or outcome).split(":")[0].strip() or outcome)
                span.set_status(Status(StatusCode.ERROR, failure or outcome))
            span.end(end_time=self._ns(finished_at))
        return invocation


class _Collect(SpanProcessor):
    """A span processor that keeps the spans ended (the OpenTelemetry SDK's interface), for the writer to export
    one order's together: the SDK's batch processor drops spans when its queue is full, and a trace cut across
    requests is harder to read in a file."""

    def __init__(self, spans: list):
        self.spans = spans

    def on_start(self, span, parent_context=None) -> None:
        pass

    def on_end(self, span) -> None:
        self.spans.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def read_otlp(path: str | Path) -> list:
    """The ``ExportTraceServiceRequest`` of each line of an OTLP JSON file, decoded with OpenTelemetry's own
    OTLP JSON codec (``opentelemetry.proto_json``): how a test reads back what :func:`write_otlp` wrote."""

    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [ExportTraceServiceRequest.from_dict(json.loads(line)) for line in lines if line.strip()]
