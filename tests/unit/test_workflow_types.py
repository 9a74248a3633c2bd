"""data/workflows.json: each workflow type's promise is the one its AWS quote states, and the local runner applies it."""

import pytest

from yafdp.plan.workflow_types import new_accounts_note, runner_type, workflow_types

WORDS = {"exactly-once": "Exactly-once", "at-least-once": "At-least-once", "at-most-once": "At-most-once"}


@pytest.mark.parametrize("name", ["standard", "express_async", "express_sync"])
def test_each_value_is_what_its_quote_says(name):
    kind = workflow_types()[name]
    assert WORDS[kind.execution] in kind.sources["execution"]["quote"]
    duration = kind.sources["max_duration_seconds"]["quote"]
    if kind.max_duration_seconds == 300:
        assert "5 minutes" in duration or "five minutes" in duration
    else:
        assert kind.max_duration_seconds == 365 * 24 * 3600 and "1 year" in duration
    if not kind.callback_tasks:
        assert "do not support Run a Job (.sync) or Wait for Callback (.waitForTaskToken)" in kind.sources["callback_tasks"]["quote"]
        assert kind.sources["callback_tasks"]["url"].startswith("https://docs.aws.amazon.com/")
    for source in kind.sources.values():
        assert source["url"].startswith(("https://docs.aws.amazon.com/", "https://aws.amazon.com/"))


def test_express_keeps_no_history_and_standard_is_billed_per_transition_retries_included():
    types = workflow_types()
    assert "CloudWatch" in types["express_async"].sources["history"]["quote"]
    assert "including retries" in types["standard"].sources["billed_by"]["quote"]


def test_the_runner_runs_express_as_the_asynchronous_kind():
    from yafdp.backends.local.step_functions import MAX_DURATION_SECONDS

    assert runner_type("express").execution == "at-least-once"
    assert MAX_DURATION_SECONDS == {"standard": 365 * 24 * 3600, "express": 300}


def test_new_accounts_start_with_reduced_transition_quotas():
    note = new_accounts_note()
    assert "reduced state transition quotas" in note["quote"] and note["url"].endswith("service-quotas.html")
