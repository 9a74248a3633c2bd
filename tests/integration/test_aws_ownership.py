"""Touch only what it owns: `yafdp deploy` refuses, naming them, resources of its plan that exist and are
not its own (before changing anything), and a run refuses an `--out` it could not save to before deploying;
a run that was not saved keeps its deployment and says how to remove it. Through the command line in a
subprocess where a user would meet it."""

import json
import os
import subprocess
import sys

import pytest

from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.teardown import destroy, inventory
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs import RunOptions
from yafdp.runs.bootstrap import open_deployed
from yafdp.runtime import rundb

DUMMY_AWS_ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
                         "AWS_DEFAULT_REGION": "eu-west-1"}

EC2_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                     "Action": "sts:AssumeRole"}]}


def _yafdp(*args):
    env = {**os.environ, **DUMMY_AWS_ENVIRONMENT}
    return subprocess.run([sys.executable, "-m", "yafdp", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_deploy_refuses_someone_elses_role_and_queue_and_changes_nothing(moto_url, clients):
    clients.iam.create_role(RoleName="victim-order-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST),
                            Tags=[{"Key": "Project", "Value": "someone-else"}])
    url = clients.sqs.create_queue(QueueName="victim-order", Attributes={"VisibilityTimeout": "45"})["QueueUrl"]
    before = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    buses = clients.events.list_event_buses()["EventBuses"]
    try:
        result = _yafdp("deploy", "--backend", "moto", "--endpoint-url", moto_url, "--prefix", "victim")
        assert result.returncode == 2, result.stdout + result.stderr
        [line] = result.stderr.strip().splitlines()
        assert "role victim-order-role (tags Project=someone-else)" in line and "queue victim-order (no tags)" in line
        assert "Traceback" not in result.stderr and result.stdout == ""
        role = clients.iam.get_role(RoleName="victim-order-role")["Role"]
        assert role["AssumeRolePolicyDocument"] == EC2_TRUST
        assert clients.iam.list_role_policies(RoleName="victim-order-role")["PolicyNames"] == []
        assert clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"] == before
        assert clients.events.list_event_buses()["EventBuses"] == buses  # nothing was created either
        assert not [t for t in clients.dynamodb.list_tables()["TableNames"] if t.startswith("victim-")]
    finally:
        clients.iam.delete_role(RoleName="victim-order-role")
        clients.sqs.delete_queue(QueueUrl=url)


def test_deploy_refuses_a_resource_of_another_run_of_the_same_prefix_family(moto_url, clients):
    deploy(clients, load_catalog(), backend="moto", prefix="mine", echo=lambda line: None)  # what `yafdp deploy` does
    try:
        clients.sqs.tag_queue(QueueUrl=clients.sqs.get_queue_url(QueueName="mine-payment")["QueueUrl"],
                              Tags={"RunId": "another-run"})
        result = _yafdp("deploy", "--backend", "moto", "--endpoint-url", moto_url, "--prefix", "mine")
        assert result.returncode == 2 and "queue mine-payment (tags Project=yafdp, RunId=another-run)" in result.stderr
    finally:
        clients.sqs.tag_queue(QueueUrl=clients.sqs.get_queue_url(QueueName="mine-payment")["QueueUrl"],
                              Tags={"RunId": "mine"})
        destroy(clients, "mine", echo=lambda line: None)


def test_a_run_refuses_an_out_it_cannot_save_to_before_deploying(tmp_path):
    (tmp_path / "run.db").mkdir()
    result = _yafdp("run", "--backend", "moto", "--orders", "2", "--out", str(tmp_path))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line == f"yafdp: cannot save the run: {tmp_path / 'run.db'} is a folder; choose another --out or remove it"
    assert "deploying" not in result.stdout + result.stderr


def test_a_run_that_was_not_saved_keeps_its_deployment_and_says_how_to_remove_it(tmp_path, moto_url, clients):
    lines = []
    options = RunOptions(orders=0, backend="moto", out=tmp_path)
    bus = open_deployed(options, load_catalog(), load_marketplace(), rundb.connect(":memory:"), echo=lines.append,
                        endpoint_url=moto_url)
    prefix = bus.plan.prefix
    try:
        bus.close()  # closed without run.db having been written: saving failed, or never happened
        assert inventory(clients, prefix), "the deployment must be kept"
        assert lines[-1].endswith(f"`yafdp destroy --backend moto --prefix {prefix} --endpoint-url {moto_url}`")
        assert f"kept the deployment {prefix}" in lines[-1]
    finally:
        destroy(clients, prefix, echo=lambda line: None)


def test_a_saved_run_destroys_its_deployment(tmp_path, moto_url, clients):
    lines = []
    bus = open_deployed(RunOptions(orders=0, backend="moto", out=tmp_path), load_catalog(), load_marketplace(),
                        rundb.connect(":memory:"), echo=lines.append, endpoint_url=moto_url)
    rundb.save_copy(bus.db, tmp_path / "run.db")
    bus.close()
    assert inventory(clients, bus.plan.prefix) == [] and lines[-1].startswith("destroyed ")
