"""The AWS side of the command line: `yafdp plan` prints every resource and policy document, `yafdp deploy`
and `yafdp destroy` work against a moto server, and `--backend aws` without an AWS setup says what to set
instead of reaching for anything."""

import json

from yafdp.cli import main


def test_plan_json_holds_every_policy_document(capsys):
    assert main(["plan", "--json", "--prefix", "demo"]) == 0
    plan = json.loads(capsys.readouterr().out)
    payment = next(s for s in plan["services"] if s["name"] == "payment")
    assert payment["policy"]["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["events:source"] == ["yafdp.payment"]
    assert payment["trust_policy"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert payment["queue_policy"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert all(r["target"]["dead_letter_queue_policy"] for r in plan["rules"])
    assert plan["tags"] == {"Project": "yafdp", "RunId": "demo"} and plan["bus"] == "demo-saga"


def test_plan_table_lists_rules_and_services(capsys):
    assert main(["plan"]) == 0
    out = capsys.readouterr().out
    assert "yafdp-payment-charges-order" in out and "yafdp-payment-role" in out


def test_deploy_prints_what_it_creates_then_nothing_and_destroy_removes_it(moto_url, capsys):
    target = ["--backend", "moto", "--endpoint-url", moto_url, "--prefix", "cli"]
    assert main(["deploy", *target]) == 0
    first = capsys.readouterr().out
    assert "create event bus cli-saga" in first and "create role policy cli-payment-role/least-privilege" in first
    assert main(["deploy", *target]) == 0
    assert capsys.readouterr().out.startswith("0 change(s)")
    assert main(["destroy", *target]) == 0
    assert "delete rule cli-payment-charges-order" in capsys.readouterr().out
    assert main(["destroy", *target]) == 0
    assert "deleted 0 resource(s)" in capsys.readouterr().out


def test_deploy_to_moto_without_an_endpoint_says_how_to_start_one(capsys):
    assert main(["deploy", "--backend", "moto"]) == 2
    assert "start one with `yafdp moto-server`" in capsys.readouterr().err


def test_run_on_aws_without_a_region_or_credentials_says_what_to_set(tmp_path, monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["run", "--backend", "aws", "--orders", "1", "--out", str(tmp_path / "run")]) == 2
    assert "no AWS region configured" in capsys.readouterr().err
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert main(["run", "--backend", "aws", "--orders", "1", "--out", str(tmp_path / "run")]) == 2
    assert "no AWS credentials" in capsys.readouterr().err


def test_run_on_moto_refuses_a_fault_it_cannot_inject(tmp_path, capsys):
    assert main(["run", "--backend", "moto", "--reorder-rate", "0.1", "--out", str(tmp_path)]) == 2
    assert "cannot inject reorder_rate" in capsys.readouterr().err


def test_the_workbook_on_aws_without_a_region_or_credentials_says_so_before_any_chapter_runs(tmp_path):
    """Through the real command line: one line, exit 2, and no build folder (it used to run two chapters, then
    fail the third with exit 1)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    for extra, says in (({}, "no AWS region configured"), ({"AWS_DEFAULT_REGION": "eu-west-1"}, "no AWS credentials")):
        done = subprocess.run([sys.executable, "-m", "yafdp", "workbook", "--backend", "aws", "--out", tmp_path / "build"],
                              capture_output=True, text=True, env={**env, **extra}, timeout=600)
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.splitlines()) == 1 and says in done.stderr
        assert not (tmp_path / "build").exists()
