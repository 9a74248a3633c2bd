"""A Classic bus run as operators see it on AWS: the ``AWS/Events`` metrics of each rule, computed from the run's
``run.db`` as EventBridge would report them, and how each of the run's dead-letter queues is redriven on AWS.

The metrics, in AWS's words ("Monitoring Amazon EventBridge",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html):

* ``Invocations``: "the number of times a target is invoked by a rule in response to an event" (here: each event
  EventBridge put in the rule's target queue, once however many times its function then ran);
* ``FailedInvocations``: "invocations that failed permanently", not those retried to success nor those counted in
  ``DeadLetterInvocations`` (here: deliveries dropped, their target having no dead-letter queue);
* ``DeadLetterInvocations``: events sent to the rule's dead-letter queue instead of its target;
* ``InvocationsFailedToBeSentToDlq``: events that could not be moved to the dead-letter queue (permissions,
  an unavailable queue, size); the local bus never fails to write its dead-letter queue, so this is 0 locally, a
  choice the emulator makes and says here;
* ``IngestionToInvocationStartLatency``: from the event's ingestion to the target's invocation. A run records when
  each function *started* on the event, after SQS's polling as well: the figure here is that, an upper bound of
  EventBridge's, and named so.

A function's failures on a queue target are not EventBridge's: they show in the service queue's dead-letter queue
(SQS's ``ApproximateNumberOfMessagesVisible``), not in these metrics.
"""

from __future__ import annotations

import pandas as pd

from yafdp.analysis.trace import Run

METRICS_URL = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html"
# SQS's redrive moves messages out of a queue configured as another SQS queue's dead-letter queue, and only such a
# queue ("This action is currently limited to supporting message redrive from queues that are configured as
# dead-letter queues (DLQs) of other Amazon SQS queues only.", StartMessageMoveTask).
MOVE_TASK_URL = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_StartMessageMoveTask.html"


def rule_metrics(run: Run) -> pd.DataFrame:
    """One row per rule (in the order the run's deliveries first reached it): ``Invocations``,
    ``FailedInvocations``, ``DeadLetterInvocations``, ``InvocationsFailedToBeSentToDlq`` (counts) and the event's
    ingestion to its function's start, p50 and p99 in ms, with ``samples`` (how many the percentiles rest on;
    ``p99 (ms)`` is None below 100 samples, where a 99th percentile is one sample).

    Examples
    --------
    >>> import tempfile
    >>> from yafdp.analysis.trace import load_run
    >>> from yafdp.runs import RunOptions, run_saga
    >>> out = tempfile.mkdtemp()
    >>> _ = run_saga(RunOptions(orders=5, seed=1, out=out))
    >>> metrics = rule_metrics(load_run(out))
    >>> int(metrics.loc["yafdp-payment-charges-order", "Invocations"]), int(metrics["FailedInvocations"].sum())
    (5, 0)
    """
    deliveries, letters, events = run.deliveries, run.dead_letters, run.events
    ingested = events.set_index("event_id")["published_at"]
    kinds = letters.groupby(["rule", "kind"]).size() if len(letters) else pd.Series(dtype=int)
    not_invoked = set(zip(letters.loc[letters["kind"].isin(["rule", "dropped"]), "event_id"],
                          letters.loc[letters["kind"].isin(["rule", "dropped"]), "rule"])) if len(letters) else set()
    rows = {}
    for rule, group in deliveries.groupby("rule", sort=False):
        pairs = group.drop_duplicates("event_id")
        invoked = pairs[[(e, rule) not in not_invoked for e in pairs["event_id"]]]
        first = group.groupby("event_id")["delivered_at"].min()
        latency = ((first - ingested.reindex(first.index)) * 1000).dropna()
        samples = len(latency)
        rows[rule] = {
            "Invocations": len(invoked),
            "FailedInvocations": int(kinds.get((rule, "dropped"), 0)),
            "DeadLetterInvocations": int(kinds.get((rule, "rule"), 0)),
            "InvocationsFailedToBeSentToDlq": 0,
            "ingestion to function start p50 (ms)": round(float(latency.quantile(0.5)), 1) if samples else None,
            "ingestion to function start p99 (ms)": round(float(latency.quantile(0.99)), 1) if samples >= 100 else None,
            "samples": samples,
        }
    order = deliveries.sort_values("delivered_at").drop_duplicates("rule")["rule"]
    return pd.DataFrame.from_dict(rows, orient="index").reindex(list(order))


def redrive_on_aws(run: Run) -> pd.DataFrame:
    """The run's dead letters by kind of dead-letter queue, and how each kind is redriven on AWS: a service queue's
    dead-letter queue with SQS's ``StartMessageMoveTask`` (back to the service queue); a rule's dead-letter queue has
    no native redrive to its target (it is no SQS queue's dead-letter queue): its messages are the events, to be
    read and put on the bus again (``PutEvents``) or sent to the target by a tool of your own."""
    letters = run.dead_letters
    how = {
        "queue": ("the service queue's dead-letter queue (the function failed maxReceiveCount receives)",
                  f"StartMessageMoveTask from the dead-letter queue back to the service queue ({MOVE_TASK_URL})"),
        "rule": ("the rule's dead-letter queue (EventBridge could not deliver to the target)",
                 "no native redrive to the rule's target: read the events and PutEvents them again (every handler "
                 "is idempotent), or send them to the target yourself; StartMessageMoveTask only moves messages of "
                 f"a queue that is another SQS queue's dead-letter queue ({MOVE_TASK_URL})"),
        "dropped": ("nowhere: the target had no dead-letter queue", "lost on AWS: nothing to redrive"),
    }
    counts = letters.groupby("kind").size() if len(letters) else pd.Series(dtype=int)
    return pd.DataFrame([{"dead letters": int(counts.get(kind, 0)), "held in": held, "redrive on AWS": redrive}
                         for kind, (held, redrive) in how.items()], index=list(how))
