"""EventBridge's per-rule metrics computed from a run as AWS would count them: a target EventBridge can never reach
shows as DeadLetterInvocations, not Invocations; a function that crashes does not show at all (its queue's
dead-letter queue holds it); and each dead letter says how it is redriven on AWS."""

import pytest

from yafdp.analysis import exercises
from yafdp.analysis.eventbridge_metrics import redrive_on_aws, rule_metrics
from yafdp.analysis.trace import load_run
from yafdp.catalog import load_catalog
from yafdp.runs import RunOptions, StuckSagasError, run_saga
from yafdp.runtime.faults import Faults

UNREACHABLE = "yafdp-loyalty-awards-confirmed-order"


def test_an_unreachable_target_counts_as_dead_letter_invocations_and_not_as_invocations(tmp_path):
    def faults_for(bus):
        return lambda rule, attempt: ("SQS.KMSAccessDenied", "the queue's key refuses EventBridge") \
            if rule == UNREACHABLE else None

    run = exercises.run_with_target_faults(load_catalog(), str(tmp_path / "run"), orders=4, seed=3,
                                           faults_for=faults_for)
    metrics = rule_metrics(run)
    assert metrics.loc[UNREACHABLE, "Invocations"] == 0
    assert metrics.loc[UNREACHABLE, "DeadLetterInvocations"] == 4  # one confirmation an order, none reached
    assert metrics.drop(UNREACHABLE)["DeadLetterInvocations"].sum() == 0
    assert metrics.loc["yafdp-payment-charges-order", "Invocations"] == 4
    ways = redrive_on_aws(run)
    assert ways.loc["rule", "dead letters"] == 4 and "no native redrive" in ways.loc["rule", "redrive on AWS"]


def test_a_crashing_function_is_not_eventbridges_failure(tmp_path):
    with pytest.raises(StuckSagasError):  # the poisoned orders wait in the dead-letter queues
        run_saga(RunOptions(orders=30, seed=2, out=tmp_path / "run", faults=Faults(poison_rate=0.05)))
    run = load_run(tmp_path / "run")
    metrics = rule_metrics(run)
    assert metrics["DeadLetterInvocations"].sum() == metrics["FailedInvocations"].sum() == 0
    poisoned = (run.dead_letters["kind"] == "queue").sum()
    assert poisoned > 0 and redrive_on_aws(run).loc["queue", "dead letters"] == poisoned
    assert "StartMessageMoveTask" in redrive_on_aws(run).loc["queue", "redrive on AWS"]
    small = metrics[metrics["samples"] < 100]
    assert small["ingestion to function start p99 (ms)"].isna().all() and len(small) > 0
