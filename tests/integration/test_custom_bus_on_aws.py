"""The AWS path on a Custom Event Bus, against moto and the bus `yafdp serve` serves: `yafdp deploy --bus custom`
makes the bus, its subscribers (FIFO, with their delivery roles and on-failure queues) and the FIFO service queues
with boto3, changes nothing the second time and refuses what it does not own; the saga runs through moto's SQS and
DynamoDB with the project's pollers and its run.db passes `yafdp check` with the Custom Event Bus's own invariants;
`yafdp export` writes a kept deployment's run; `yafdp destroy` removes exactly what was made."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.analysis.check import check_run
from yafdp.backends.aws.clients import make_clients
from yafdp.backends.aws.deployment import open_deployed_bus
from yafdp.backends.aws.teardown import inventory
from yafdp.catalog import load_catalog
from yafdp.cli import main
from yafdp.plan import build_plan
from yafdp.runs.bootstrap import serve_custom_event_bus
from yafdp.runs.workload import planned_requests
from yafdp.runtime import rundb

YAFDP = Path(sys.executable).with_name("yafdp")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(moto_url):
    with serve_custom_event_bus(endpoint_url=moto_url) as bus:
        yield bus


@pytest.fixture(scope="module")
def clients(moto_url, served):
    return make_clients(moto_url, bus_endpoint_url=served.url)


def _target(moto_url, served, prefix: str) -> list[str]:
    return ["--backend", "moto", "--endpoint-url", moto_url, "--bus", "custom", "--bus-endpoint-url", served.url,
            "--prefix", prefix]


def test_deploy_makes_the_custom_bus_plan_then_nothing_and_destroy_removes_it_all(moto_url, served, clients, capsys,
                                                                                  tmp_path):
    target = _target(moto_url, served, "cbd")
    assert main(["deploy", *target]) == 0
    made = capsys.readouterr().out
    assert "create event bus cbd-saga" in made and "create subscriber cbd-payment-charges-order" in made
    assert "create role cbd-payment-delivery" in made and "create queue cbd-payment.fifo" in made
    assert main(["deploy", *target]) == 0
    assert capsys.readouterr().out.startswith("0 change(s)")

    plan = build_plan(load_catalog(), "cbd", region=clients.region, account=clients.account(), run_id="cbd", bus="custom")
    eb = clients.eventbridgev2
    [bus] = [b for b in eb.list_event_buses(NamePrefix="cbd-")["EventBuses"]]
    assert bus["State"] == "ACTIVE" and eb.list_tags_for_resource(ResourceArn=bus["EventBusArn"])["Tags"] == plan.tags
    assert eb.describe_event_bus(EventBusArn=bus["EventBusArn"])["StorageConfiguration"]["RetentionPeriodInDays"] == \
        plan.retention_days
    deployed = {s["Name"]: s for s in eb.list_subscribers(EventBusArn=bus["EventBusArn"])["Subscribers"]}
    assert set(deployed) == {s.name for s in plan.subscribers}
    for subscriber in plan.subscribers:
        described = eb.describe_subscriber(SubscriberArn=deployed[subscriber.name]["SubscriberArn"])
        invoke = described["InvokeConfiguration"]
        assert (described["Type"], invoke["TargetArn"]) == (subscriber.type, plan.target_arn(subscriber))
        assert invoke["RoleArn"] == plan.role_arn(subscriber.role)
        assert invoke["SqsParameters"]["MessageGroupId"] == "{% $events.SystemMetadata.EventGroupId %}"
        assert described["OnFailureConfiguration"]["Arn"] == plan.queue_arn(subscriber.target.dead_letter_queue)
        assert described["RetryPolicy"]["MaxRetryAttempts"] == subscriber.target.retry_policy.maximum_retry_attempts
    for service in plan.services:
        url = clients.sqs.get_queue_url(QueueName=service.queue)["QueueUrl"]
        attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["FifoQueue"] == "true" and "Policy" not in attributes  # the delivery role sends, not a policy
        role = clients.iam.get_role(RoleName=service.delivery_role)["Role"]
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
        assert clients.iam.get_role_policy(RoleName=service.delivery_role, PolicyName="least-privilege")[
            "PolicyDocument"] == service.delivery_policy

    classic = ["--backend", "moto", "--endpoint-url", moto_url, "--prefix", "cbd"]  # --bus custom forgotten
    before = inventory(clients, "cbd")
    assert main(["destroy", *classic]) == 2 and main(["export", *classic, "--out", str(tmp_path / "x")]) == 2
    said = capsys.readouterr().err
    assert "the deployment cbd is on a Custom Event Bus" in said and "pass --bus custom" in said
    assert inventory(clients, "cbd") == before and not (tmp_path / "x").exists()  # nothing half-destroyed
    assert main(["destroy", *target]) == 0
    gone = capsys.readouterr().out
    assert "delete subscriber cbd-payment-charges-order" in gone and "delete custom event bus cbd-saga" in gone
    assert inventory(clients, "cbd") == [] and eb.list_event_buses(NamePrefix="cbd-")["EventBuses"] == []
    assert main(["destroy", *target]) == 0
    assert "deleted 0 resource(s)" in capsys.readouterr().out


def test_deploy_refuses_a_bus_of_its_name_that_it_does_not_own_and_changes_nothing(moto_url, served, clients, capsys):
    eb = clients.eventbridgev2
    arn = eb.create_event_bus(Name="cbo-saga", Tags={"Project": "someone-else"})["EventBusArn"]
    eb.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig={"Delay": 1})
    assert main(["deploy", *_target(moto_url, served, "cbo")]) == 2
    said = capsys.readouterr().err
    assert "event bus cbo-saga (tags Project=someone-else)" in said and "nothing was changed" in said
    assert inventory(clients, "cbo") == []
    assert clients.sqs.list_queues(QueueNamePrefix="cbo-").get("QueueUrls", []) == []
    eb.delete_event_bus(EventBusArn=arn)


def test_export_writes_a_kept_custom_bus_deployments_run_and_check_passes(moto_url, served, clients, tmp_path, capsys):
    target = _target(moto_url, served, "cbx")
    assert main(["deploy", *target]) == 0
    catalog = load_catalog()
    world = catalog.code.world()
    plan = build_plan(catalog, "cbx", region=clients.region, account=clients.account(), run_id="cbx", bus="custom")
    bus = open_deployed_bus(plan, catalog, world, clients, rundb.connect(":memory:"), backend="moto",
                            concurrency=1, undelivered=served.undelivered)
    try:
        no_failure = {"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0}
        for order in planned_requests(catalog, 2, seed=5, rates=no_failure, world=world):
            bus.call("order", "place_order", order.request)
        bus.run()
    finally:
        bus.close()
    capsys.readouterr()
    assert main(["export", *target, "--out", str(tmp_path / "exported")]) == 0
    assert "exported" in capsys.readouterr().out
    results = check_run(tmp_path / "exported")
    assert all(i.passed for i in results if i.name != "every request accounted for"), \
        [(i.name, i.offenders) for i in results if not i.passed]
    db = rundb.open_run(tmp_path / "exported")
    assert rundb.get_info(db)["bus"] == "custom"
    assert db.execute("SELECT COUNT(*) FROM events WHERE sequence_number IS NOT NULL").fetchone()[0] >= 8
    assert main(["destroy", *target]) == 0


@pytest.mark.parametrize("args, says", [
    (["deploy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9", "--bus", "custom"],
     "--backend moto --bus custom needs --bus-endpoint-url: moto has no Custom Event Bus; start one with "
     "`yafdp serve --endpoint-url http://127.0.0.1:9`"),
    (["destroy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9", "--bus", "classic",
      "--bus-endpoint-url", "http://127.0.0.1:9"], "argument --bus-endpoint-url: does nothing without --bus custom"),
    (["export", "--backend", "aws", "--bus", "custom", "--bus-endpoint-url", "http://127.0.0.1:9", "--out", "x"],
     "argument --bus-endpoint-url: does nothing with --backend aws"),
], ids=["custom-on-moto-without-a-bus", "bus-endpoint-with-classic", "bus-endpoint-on-aws"])
def test_the_custom_bus_options_are_refused_where_they_cannot_work_in_one_line(tmp_path, args, says):
    done = subprocess.run([YAFDP, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1",
                                                         "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                                                         "AWS_EC2_METADATA_DISABLED": "true"})
    assert done.returncode == 2 and done.stdout == "" and not (tmp_path / "x").exists()
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr


def test_the_saga_on_moto_and_a_served_custom_bus_passes_check_with_the_custom_buses_invariants(tmp_path):
    """The issue's "done when": `yafdp run --backend moto --bus custom` (the bus served in the run's process, its
    subscribers delivering to the run's moto server), then `yafdp check` on what it exported."""
    out = tmp_path / "run"
    done = subprocess.run([YAFDP, "run", "--backend", "moto", "--bus", "custom", "--orders", "4", "--seed", "3",
                           "--payment-failure-rate", "0.25", "--delivery-failure-rate", "0.25", "--concurrency", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "the Custom Event Bus served at http://127.0.0.1:" in done.stderr
    assert json.loads((out / "summary.json").read_text())["orders"]["requested"] == 4
    checked = subprocess.run([YAFDP, "check", str(out)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and "FAIL" not in checked.stdout, checked.stdout
    results = {i.name: i for i in check_run(out)}
    fifo, dedup = results["FIFO order per event group"], results["deduplication at publish"]
    assert fifo.skipped is None and fifo.checked > 0 and dedup.skipped is None
    db = rundb.open_run(out)
    assert db.execute("SELECT COUNT(*) FROM events WHERE sequence_number IS NULL OR event_group_id IS NULL").fetchone() \
        == (0,)
    assert {t for (t,) in db.execute("SELECT DISTINCT delivery_type FROM deliveries")} == {"LIVE"}
    assert rundb.get_info(db)["bus"] == "custom"


def test_a_fifo_group_whose_messages_all_came_back_is_handed_out_from_its_first_message(clients):
    """What moto 5.2 got wrong and the project's moto server corrects: three messages of one group received together
    and left (a failed batch) come back when their visibility timeout ends, the first one first."""
    sqs = clients.sqs
    url = sqs.create_queue(QueueName="fifo-comeback.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for step in ("first", "second", "third"):
        sqs.send_message(QueueUrl=url, MessageBody=step, MessageGroupId="g", MessageDeduplicationId=step)
    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert [m["Body"] for m in taken] == ["first", "second", "third"]
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=10)["Messages"]  # once visible
    assert [m["Body"] for m in again] == ["first", "second", "third"]
    sqs.delete_queue(QueueUrl=url)


def test_a_changed_subscriber_is_updated_in_place_and_one_whose_type_changed_is_replaced(clients):
    """UpdateSubscriber for what may change (a retry policy); delete and create for what may not (the Type), as
    the user guide's "Updating a subscriber" has it; applying the same plan again changes nothing."""
    import dataclasses

    from yafdp.backends.aws.deployer import Change, apply
    from yafdp.backends.aws.package import build_package
    from yafdp.backends.aws.teardown import destroy

    catalog = load_catalog().without("loyalty", "delivery", "restaurant", "notification")
    plan = build_plan(catalog, "cbu", region=clients.region, account=clients.account(), run_id="cbu", bus="custom")
    package, quiet = build_package(), (lambda line: None)
    apply(plan, clients, package, run_functions=False, echo=quiet)
    [first, *rest] = plan.subscribers
    retried = dataclasses.replace(first, target=dataclasses.replace(
        first.target, retry_policy=dataclasses.replace(first.target.retry_policy, maximum_retry_attempts=2)))
    changed = dataclasses.replace(plan, subscribers=(retried, *rest))
    assert apply(changed, clients, package, run_functions=False, echo=quiet) == [
        Change("update", "subscriber", f"{first.name} (RetryPolicy)")]
    assert apply(changed, clients, package, run_functions=False, echo=quiet) == []
    unordered = dataclasses.replace(changed, subscribers=(dataclasses.replace(retried, type="UNORDERED"), *rest))
    assert apply(unordered, clients, package, run_functions=False, echo=quiet) == [
        Change("delete", "subscriber", f"{first.name} (its Type cannot change)"),
        Change("create", "subscriber", first.name)]
    bus = clients.eventbridgev2.list_event_buses(NamePrefix="cbu-")["EventBuses"][0]["EventBusArn"]
    [described] = [clients.eventbridgev2.describe_subscriber(SubscriberArn=s["SubscriberArn"]) for s in
                   clients.eventbridgev2.list_subscribers(EventBusArn=bus, NamePrefix=first.name)["Subscribers"]]
    assert (described["Type"], described["RetryPolicy"]["MaxRetryAttempts"]) == ("UNORDERED", 2)
    destroy(clients, "cbu", echo=quiet)


def test_a_subscriber_whose_target_is_a_function_is_refused_on_moto_before_anything_is_asked(catalog_copy, tmp_path):
    catalog_copy.edit("payment", lambda doc: doc["subscriptions"][0].update(target="lambda"))
    done = subprocess.run([YAFDP, "deploy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9", "--bus", "custom",
                           "--bus-endpoint-url", "http://127.0.0.1:9", "--catalog", str(catalog_copy.root)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert "services/payment.json: subscriptions[0].target: " in done.stderr
    assert "(payment-charges-order) is run on the local backend only, not on moto or AWS" in done.stderr
