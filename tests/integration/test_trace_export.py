"""`yafdp trace DIR --format otlp`: a run as OpenTelemetry traces in the OTLP JSON file format, read back with
OpenTelemetry's own OTLP JSON codec and compared, span by span, with run.db."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from yafdp.analysis.otlp import read_otlp
from yafdp.runtime.envelope import CLOCK_ORIGIN

YAFDP = Path(sys.executable).with_name("yafdp")
SERVER, CONSUMER, PRODUCER, INTERNAL = 2, 5, 4, 1  # OTLP's SpanKind numbers


def _yafdp(*args, cwd):
    return subprocess.run([YAFDP, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def _attributes(item) -> dict:
    return {kv.key: next(v for v in (kv.value.string_value, kv.value.bool_value, kv.value.int_value,
                                     kv.value.double_value) if v is not None) for kv in item.attributes}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A run with retries, duplicates and dead letters, and its export."""
    folder = tmp_path_factory.mktemp("trace")
    made = _yafdp("run", "--orders", 25, "--seed", 3, "--duplicate-rate", 0.2, "--handler-failure-rate", 0.2,
                  "--poison-rate", 0.05, "--out", "run", cwd=folder)
    # poisoned orders end in a dead-letter queue, so the run says they are stuck (exit 1) and is written
    assert made.returncode == 1 and "sagas stuck" in made.stderr, made.stderr
    written = _yafdp("trace", "run", "--format", "otlp", "--out", "run.otlp.jsonl", cwd=folder)
    assert written.returncode == 0, written.stderr
    return folder


def test_every_line_is_one_order_as_one_trace_in_otlp_json(exported):
    lines = (exported / "run.otlp.jsonl").read_text().splitlines()
    orders = sqlite3.connect(exported / "run" / "run.db").execute("SELECT COUNT(DISTINCT order_id) FROM events").fetchone()[0]
    assert len(lines) == orders == 25
    traces = set()
    for line in lines:  # OTLP JSON: ids in hex (not protobuf JSON's base64), lowerCamelCase keys, enums as numbers
        document = json.loads(line)
        spans = [s for r in document["resourceSpans"] for scope in r["scopeSpans"] for s in scope["spans"]]
        assert {s["traceId"] for s in spans} == {spans[0]["traceId"]}
        assert all(re.fullmatch(r"[0-9a-f]{32}", s["traceId"]) and re.fullmatch(r"[0-9a-f]{16}", s["spanId"])
                   and isinstance(s["kind"], int) for s in spans)
        traces.add(spans[0]["traceId"])
    assert len(traces) == orders


def test_the_spans_are_the_runs_events_and_deliveries_with_their_causes_and_times(exported):
    db = sqlite3.connect(exported / "run" / "run.db")
    spans = []
    for request in read_otlp(exported / "run.otlp.jsonl"):
        for resource in request.resource_spans:
            service = _attributes(resource.resource)["service.name"]
            spans += [(service, span) for scope in resource.scope_spans for span in scope.spans]
    by_id = {span.span_id: span for _, span in spans}
    sends = {_attributes(s)["messaging.message.id"]: s for _, s in spans if s.kind == PRODUCER}
    invocations = {_attributes(s)["faas.invocation_id"]: (service, s) for service, s in spans if s.kind == SERVER}
    consumers = defaultdict(list)
    for _, span in spans:
        if span.kind == CONSUMER:
            consumers[span.parent_span_id].append(span)
    ns = lambda seconds: round((CLOCK_ORIGIN + seconds) * 1e9)  # noqa: E731

    events = db.execute("SELECT event_id, detail_type, published_at, published_by FROM events").fetchall()
    assert set(sends) == {e[0] for e in events}
    handled = {(r, e): str(i) for i, e, r in db.execute("SELECT rowid, event_id, rule FROM deliveries WHERE outcome = 'ok'")}
    for event_id, detail_type, published_at, published_by in events:
        send = sends[event_id]
        assert _attributes(send)["yafdp.event.detail_type"] == detail_type
        assert abs(send.start_time_unix_nano - ns(published_at)) <= 1000
        parent = by_id[send.parent_span_id]
        if published_by and published_by.startswith("schedule#"):  # a deadline: the schedule put it, in the order's trace
            assert parent.name.startswith("order ") and _attributes(send)["yafdp.schedule"] == published_by[9:]
        elif published_by:  # the handler that published it is its parent
            rule, cause = published_by.split("#")
            assert _attributes(parent)["faas.invocation_id"] == handled[(rule, cause)]
        else:  # placed by a client: the order's root span
            assert parent.kind == INTERNAL and parent.name.startswith("order ")

    deliveries = db.execute("SELECT rowid, event_id, rule, target, attempt, delivered_at, finished_at, outcome, error"
                            " FROM deliveries").fetchall()
    assert len(invocations) == len(deliveries) and deliveries
    for row_id, event_id, rule, target, attempt, delivered_at, finished_at, outcome, error in deliveries:
        service, invocation = invocations[str(row_id)]
        attributes = _attributes(invocation)
        assert service == target and invocation.name == f"yafdp-{target}"
        assert (attributes["yafdp.rule"], attributes["yafdp.delivery.attempt"]) == (rule, attempt)
        assert attributes["faas.trigger"] == "pubsub" and attributes["yafdp.delivery.outcome"] == outcome
        assert attributes["aws.lambda.invoked_arn"] == f"arn:aws:lambda:eu-west-1:000000000000:function:yafdp-{target}"
        assert abs(invocation.start_time_unix_nano - ns(delivered_at)) <= 1000
        assert abs(invocation.end_time_unix_nano - ns(finished_at)) <= 1000
        (process,) = consumers[invocation.span_id]  # the message, within the invocation, linked to its cause
        message = _attributes(process)
        assert message["messaging.system"] == "aws_sqs" and message["messaging.operation.type"] == "process"
        assert message["messaging.destination.name"] == f"yafdp-{target}" and message["messaging.message.id"] == event_id
        (link,) = process.links
        assert (link.trace_id, link.span_id) == (sends[event_id].trace_id, sends[event_id].span_id)
        failed = outcome in ("failed", "dead_lettered")
        assert (invocation.status.code == 2) == failed and (process.status.code == 2) == failed
        if failed:
            assert attributes["error.type"] and invocation.status.message == (error or outcome)
    assert {o for (o,) in db.execute("SELECT outcome FROM deliveries")} >= {"ok", "failed", "duplicate", "dead_lettered"}

    letters = db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
    roots = [s for _, s in spans if s.kind == INTERNAL]
    assert letters and sum(1 for r in roots for e in r.events if e.name == "dead-lettered") == letters


def test_a_simulated_run_is_marked_simulated_on_every_span(tmp_path):
    assert _yafdp("run", "--orders", 3, "--latency-model", "aws-eu-west-1", "--out", "run", cwd=tmp_path).returncode == 0
    written = _yafdp("trace", "run", "--format", "otlp", cwd=tmp_path)  # to standard output
    assert written.returncode == 0, written.stderr
    requests = [json.loads(line) for line in written.stdout.splitlines()]
    assert len(requests) == 3
    for request in requests:
        for resource in request["resourceSpans"]:
            attributes = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
            assert attributes["yafdp.time.simulated"] == {"boolValue": True}
            assert attributes["yafdp.latency_model"] == {"stringValue": "aws-eu-west-1"}
            assert "simulated" in attributes["yafdp.times"]["stringValue"]


def test_a_trace_to_standard_output_shows_its_orders_in_a_bar_on_standard_error_only(exported):
    """The bar is where someone watches (here asked for with YAFDP_PROGRESS=1, as a terminal would have it); the
    traces on standard output stay one JSON document per line."""
    written = subprocess.run([YAFDP, "trace", "run", "--format", "otlp"], capture_output=True, text=True,
                             cwd=exported, timeout=600, env={**os.environ, "YAFDP_PROGRESS": "1"})
    assert written.returncode == 0, written.stderr
    assert re.search(r"orders traced: 100%\|[^|]*\| 25/25 ", written.stderr), written.stderr
    assert written.stderr.rstrip().endswith("as OTLP JSON")
    assert len([json.loads(line) for line in written.stdout.splitlines()]) == 25


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_no_room_for_the_trace_is_one_line_exit_2_and_the_earlier_file_is_kept(exported):
    """The new-user review's case: OpenTelemetry's exporter logs a failed write and goes on, so a full disk (here a
    file-size limit, as in test_cli_bad_input) was 'wrote 25 traces', exit 0, and the earlier file replaced by a
    part of the new one."""
    import resource

    earlier = (exported / "run.otlp.jsonl").read_bytes()

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    result = subprocess.run([YAFDP, "trace", "run", "--format", "otlp", "--out", "run.otlp.jsonl", "--force"],
                            capture_output=True, text=True, cwd=exported, timeout=600, preexec_fn=limited)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "no room to write" in result.stderr, result.stderr
    assert (exported / "run.otlp.jsonl").read_bytes() == earlier
    assert not [p.name for p in exported.iterdir() if p.name.startswith(".run.otlp")]


def test_a_trace_piped_to_a_reader_that_stops_ends_quietly_with_141(exported):
    """`yafdp trace RUN --format otlp | head -c 100`: the exporter's failed writes were a traceback per order and
    exit 0; a closed pipe ends the command as it ends run, check and replay."""
    process = subprocess.Popen([YAFDP, "trace", "run", "--format", "otlp"], cwd=exported, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert len(process.stdout.read(100)) == 100
    process.stdout.close()  # the reader stops
    said = process.stderr.read().decode()
    assert process.wait(timeout=600) == 141 and said == "", said


def test_bad_input_is_one_line_and_an_existing_file_is_kept(tmp_path):
    missing = _yafdp("trace", "nowhere", "--format", "otlp", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nowhere" in missing.stderr
    assert _yafdp("run", "--orders", 2, "--out", "run", cwd=tmp_path).returncode == 0
    (tmp_path / "kept.jsonl").write_text("mine\n")
    refused = _yafdp("trace", "run", "--format", "otlp", "--out", "kept.jsonl", cwd=tmp_path)
    assert refused.returncode == 2 and "--out kept.jsonl exists" in refused.stderr and refused.stderr.count("\n") == 1
    assert (tmp_path / "kept.jsonl").read_text() == "mine\n"
    replaced = _yafdp("trace", "run", "--format", "otlp", "--out", "kept.jsonl", "--force", cwd=tmp_path)
    assert replaced.returncode == 0 and len((tmp_path / "kept.jsonl").read_text().splitlines()) == 2
    no_format = _yafdp("trace", "run", cwd=tmp_path)
    assert no_format.returncode == 2 and "--format" in no_format.stderr
    idle = _yafdp("trace", "run", "--format", "otlp", "--force", cwd=tmp_path)
    assert idle.returncode == 2 and "argument --force: does nothing without --out" in idle.stderr


def test_a_deployed_runs_spans_are_placed_at_the_real_time_of_its_first_event(exported, tmp_path):
    """moto and AWS runs count seconds from their first moment too; their envelopes carry the real time."""
    import calendar
    import io
    import shutil

    from yafdp.analysis.otlp import write_otlp

    shutil.copy(exported / "run" / "run.db", tmp_path / "run.db")
    db = sqlite3.connect(tmp_path / "run.db")
    with db:
        db.execute("UPDATE run_info SET value = '\"moto\"' WHERE key = 'backend'")
        first_seq, first_at = db.execute("SELECT seq, published_at FROM events ORDER BY published_at LIMIT 1").fetchone()
        db.execute("UPDATE events SET time = '2026-05-04T10:00:00Z' WHERE seq = ?", (first_seq,))
    db.close()
    stream = io.StringIO()
    write_otlp(tmp_path / "run.db", stream)
    starts = [int(s["startTimeUnixNano"]) for line in stream.getvalue().splitlines()
              for r in json.loads(line)["resourceSpans"] for scope in r["scopeSpans"] for s in scope["spans"]
              if s["kind"] == PRODUCER]
    assert abs(min(starts) - calendar.timegm((2026, 5, 4, 10, 0, 0)) * 1_000_000_000) <= 1000
