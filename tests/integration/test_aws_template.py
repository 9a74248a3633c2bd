"""`yafdp plan --format cloudformation`: the plan as a template that AWS's own validators accept (cfn-lint,
with AWS's resource specification: zero findings), whose IAM policies a maintained policy linter
(parliament) finds nothing in, and whose stack, created on moto's CloudFormation, holds the same resources
as the boto3 deployer creates."""

import ast
import copy
import json
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from yafdp.backends.aws.deployment import SETTINGS, deploy
from yafdp.backends.aws.package import build_package
from yafdp.backends.aws.teardown import destroy, inventory
from yafdp.catalog import DEFAULT_DATA_DIR, load_catalog
from yafdp.plan import build_plan
from yafdp.plan.cloudformation import cloudformation_template, render, template_plan
from yafdp.plan.custom_bus import REPLACEMENT_CAVEAT, delivery_trust_policy
from yafdp.plan.model import LAMBDA_TRUST_POLICY, plan_resources

CATALOG = load_catalog()


def _plan_command(tmp_path, output, *options):
    result = subprocess.run([sys.executable, "-m", "yafdp", "plan", "--format", "cloudformation", "--output", output,
                             "--prefix", "tpl", *options], capture_output=True, text=True, check=True)
    path = tmp_path / f"template.{output}"
    path.write_text(result.stdout)
    return path


def lint_file(path, regions=("us-east-1",)):
    """cfn-lint's findings in a template file, its informational rules included (I3042: a partition written into an
    ARN; I3011: a stateful resource without a chosen DeletionPolicy and UpdateReplacePolicy; I3013: a queue left to
    the default retention), against the resource schemas of ``regions`` (cfn-lint's default: us-east-1). cfn-lint is
    imported on first use, not at collection: it takes half a second to import, in every pytest-xdist worker."""
    from cfnlint.api import ManualArgs, lint_file

    return lint_file(path, config=ManualArgs(include_checks=["I"], regions=list(regions)))


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_cfn_lint_finds_nothing_in_the_template(tmp_path, output):
    path = _plan_command(tmp_path, output)
    document = json.loads(path.read_text()) if output == "json" else yaml.safe_load(path.read_text())
    assert document["Resources"]["Bus"]["Properties"]["Name"] == "tpl-saga"
    assert [str(match) for match in lint_file(path)] == []  # errors, warnings and informational findings alike


def test_arns_name_the_partition_account_and_region_with_pseudo_parameters(tmp_path):
    # Tried: the template wrote arn:aws: into every ARN (cfn-lint I3042): it deployed only in the aws partition.
    text = _plan_command(tmp_path, "json").read_text()
    assert "arn:aws:" not in text and "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" in text
    path = tmp_path / "partitioned.json"
    document = cloudformation_template(template_plan(CATALOG, "tpl"))
    document["Resources"]["QueuePolicyTplPayment"]["Properties"]["PolicyDocument"]["Statement"][0]["Resource"] = {
        "Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:tpl-payment"}  # the partition written in
    path.write_text(render(document))
    assert "I3042" in {m.rule.id for m in lint_file(path)}  # the linter does look


def test_every_resource_that_holds_data_has_the_removal_policy_the_plan_chose():
    # Tried: 34 tables, queues and log groups without DeletionPolicy or UpdateReplacePolicy (cfn-lint I3011).
    plan = template_plan(CATALOG, "tpl")
    resources = cloudformation_template(plan)["Resources"]
    stateful = {name: r for name, r in resources.items()
                if r["Type"] in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup")}
    assert len(stateful) == 35  # 6 services × (queue, DLQ, table, log group) + 11 rule DLQs
    kinds = {"AWS::DynamoDB::Table": "table", "AWS::Logs::LogGroup": "log group"}
    for name, resource in stateful.items():
        kind = kinds.get(resource["Type"]) or ("dead-letter queue" if name.startswith("DeadLetterQueue") else "queue")
        policy = plan.removal_policies[kind]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (policy.deletion, policy.update_replace)
        assert policy.why
    assert {k: p.deletion for k, p in plan.removal_policies.items()} == {
        "table": "Retain", "dead-letter queue": "Retain", "queue": "Delete", "log group": "Delete"}


def test_cfn_lint_would_say_so_if_the_template_were_wrong(tmp_path):
    document = cloudformation_template(template_plan(CATALOG, "tpl"))
    document["Resources"]["Bus"]["Properties"]["Nme"] = document["Resources"]["Bus"]["Properties"].pop("Name")
    path = tmp_path / "broken.json"
    path.write_text(render(document))
    assert "E3002" in {m.rule.id for m in lint_file(path)}  # Nme: not a property of an event bus


def test_a_rule_whose_target_is_a_function_targets_the_function_which_only_that_rule_may_invoke(tmp_path):
    # Tried: the template's rule targeted the service's queue whatever the plan said (the deployer: the function).
    catalog = load_catalog(_catalog_with(tmp_path, lambda s: s.update(target="lambda")))
    plan = template_plan(catalog, "tpl")
    rule = plan.rule("payment-charges-order")
    assert rule.target.kind == "lambda"
    resources = cloudformation_template(plan)["Resources"]
    assert resources["RuleTplPaymentChargesOrder"]["Properties"]["Targets"][0]["Arn"] == {
        "Fn::GetAtt": ["FunctionTplPayment", "Arn"]}
    permissions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert permissions == [{"FunctionName": {"Ref": "FunctionTplPayment"}, "Action": "lambda:InvokeFunction",
                            "Principal": "events.amazonaws.com",
                            "SourceArn": {"Fn::GetAtt": ["RuleTplPaymentChargesOrder", "Arn"]}}]


def test_the_policy_linter_finds_nothing_in_any_policy_of_the_plan():
    from parliament import analyze_policy_string  # imported here, not at collection (as cfn-lint above)

    plan = build_plan(CATALOG, "lint", account="123456789012")
    documents = [(f"{s.role} policy", s.policy) for s in plan.services]
    documents += [(f"{s.queue} queue policy", s.queue_policy) for s in plan.services]
    documents += [(f"{r.target.dead_letter_queue} queue policy", r.target.dead_letter_queue_policy) for r in plan.rules]
    findings = {name: [(f.issue, f.detail) for f in analyze_policy_string(json.dumps(document)).findings]
                for name, document in documents}
    assert {name: found for name, found in findings.items() if found} == {}
    # parliament reads every document as an identity policy, which must name a Resource; a role's trust
    # policy must not, so it is held to the one AWS documents for Lambda instead.
    assert all(s.trust_policy == LAMBDA_TRUST_POLICY for s in plan.services)


def test_the_stack_on_moto_holds_what_the_deployer_creates(moto_url, clients, tmp_path):
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=clients.region)
    # One try, however long moto takes to create 80 resources on a busy machine: a retry after botocore's 60 s read
    # timeout would ask for the stack again, and moto answers that its bus already exists.
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_url, region_name=clients.region,
                                  config=Config(read_timeout=900, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="yafdp-code", CreateBucketConfiguration={"LocationConstraint": clients.region})
    s3.put_object(Bucket="yafdp-code", Key="yafdp.zip", Body=build_package())
    # the plan the moto backend deploys (its short visibility timeout, hence function timeout, included)
    template = cloudformation_template(template_plan(CATALOG, "stk", point_in_time_recovery=False,
                                                     visibility_timeout_seconds=SETTINGS["moto"].visibility_timeout_seconds))
    cloudformation.create_stack(StackName="stk", TemplateBody=render(template), Capabilities=["CAPABILITY_NAMED_IAM"],
                                Parameters=[{"ParameterKey": "CodeS3Bucket", "ParameterValue": "yafdp-code"},
                                            {"ParameterKey": "CodeS3Key", "ParameterValue": "yafdp.zip"}])
    deploy(clients, CATALOG, backend="moto", prefix="bto", echo=lambda line: None, point_in_time_recovery=False)
    try:
        status = cloudformation.describe_stacks(StackName="stk")["Stacks"][0]["StackStatus"]
        assert status == "CREATE_COMPLETE"
        stack, boto = _resources(clients, "stk"), _resources(clients, "bto")
        # moto's CloudFormation has no AWS::Scheduler::ScheduleGroup (it says so and skips it): the group is compared
        # as the template and the deployer name it, the rest resource by resource.
        found = inventory(clients, "bto")
        assert [r.name for r in found if r.kind == "schedule group"] == ["bto-deadlines"]
        assert template["Resources"]["ScheduleGroup"]["Properties"]["Name"] == "stk-deadlines"
        assert stack == boto and len(boto) == len(found) - len(
            [r for r in found if r.kind in ("role policy", "schedule group")])
    finally:
        cloudformation.delete_stack(StackName="stk")
        destroy(clients, "stk", echo=lambda line: None)
        destroy(clients, "bto", echo=lambda line: None)


def _policy(document):
    """A policy document as a dict: moto's CloudFormation stores an inline policy as Python's text of the dict."""
    return ast.literal_eval(document) if isinstance(document, str) else document


def _resources(clients, prefix):
    """``(kind, name with the prefix as P, settings)`` of every resource named ``<prefix>-…``, listed by name:
    moto's CloudFormation does not tag every kind, so the deployer's tag-based inventory cannot find them."""
    found, same = [], lambda name: name.replace(f"{prefix}-", "P-")
    bus = f"{prefix}-saga"
    for b in clients.events.list_event_buses(NamePrefix=f"{prefix}-")["EventBuses"]:
        found.append(("event bus", same(b["Name"]), ""))
    for rule in clients.events.list_rules(EventBusName=bus, NamePrefix=f"{prefix}-")["Rules"]:
        found.append(("rule", same(rule["Name"]), json.loads(rule["EventPattern"])))
        for t in clients.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]:
            found.append(("target", same(f"{rule['Name']}/{t['Id']}"), same(json.dumps(
                [t["Arn"], t["RetryPolicy"], t["DeadLetterConfig"], t["InputTransformer"]["InputTemplate"]]))))
    for a in clients.events.list_archives(NamePrefix=f"{prefix}-")["Archives"]:
        found.append(("archive", same(a["ArchiveName"]), same(a["EventSourceArn"])))
    for url in clients.sqs.list_queues(QueueNamePrefix=f"{prefix}-").get("QueueUrls", []):
        attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
        found.append(("queue", same(url.rsplit("/", 1)[-1]), same(json.dumps(
            [attributes["VisibilityTimeout"], redrive.get("deadLetterTargetArn"), str(redrive.get("maxReceiveCount"))]))))
    for name in clients.dynamodb.list_tables()["TableNames"]:
        if name.startswith(f"{prefix}-"):
            table = clients.dynamodb.describe_table(TableName=name)["Table"]
            found.append(("table", same(name), json.dumps(table["KeySchema"])))
    for f in clients.lambda_.list_functions()["Functions"]:
        if f["FunctionName"].startswith(f"{prefix}-"):
            found.append(("function", same(f["FunctionName"]), same(json.dumps(
                [f["Handler"], f["Runtime"], f["Timeout"], f["MemorySize"], f["Role"].rsplit("/", 1)[-1]]))))
            for m in clients.lambda_.list_event_source_mappings(FunctionName=f["FunctionName"])["EventSourceMappings"]:
                found.append(("event source mapping", same(m["EventSourceArn"].rsplit(":", 1)[-1]),
                              json.dumps([m["BatchSize"], m.get("FunctionResponseTypes")])))
    for r in clients.iam.list_roles(PathPrefix="/yafdp/")["Roles"]:
        if r["RoleName"].startswith(f"{prefix}-"):
            policies = {p: _policy(clients.iam.get_role_policy(RoleName=r["RoleName"], PolicyName=p)["PolicyDocument"])
                        for p in clients.iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]}
            found.append(("role", same(r["RoleName"]), same(json.dumps(policies, sort_keys=True))))
    for g in clients.logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{prefix}-")["logGroups"]:
        found.append(("log group", same(g["logGroupName"]), str(g.get("retentionInDays"))))
    return sorted(found)


# ---------------------------------------------------------------- the Custom Event Bus's template
# AWS::EventsV2 resources, which cfn-lint 1.58's bundled schemas list in eu-west-1 (the plan's stand-in Region) and
# us-east-1 (cfn-lint's default), among others, and not in every Region.
CUSTOM_REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def custom_plan():
    return template_plan(CATALOG, "tpl", bus="custom")


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_cfn_lint_finds_nothing_in_the_custom_bus_template_where_its_schemas_have_the_custom_event_bus(
        tmp_path, custom_plan, output):
    path = _plan_command(tmp_path, output, "--bus", "custom")
    document = json.loads(path.read_text()) if output == "json" else yaml.safe_load(path.read_text())
    types = [r["Type"] for r in document["Resources"].values()]
    assert types.count("AWS::EventsV2::EventBus") == 1 and "AWS::Events::EventBus" not in types
    assert types.count("AWS::EventsV2::Subscriber") == len(custom_plan.subscribers) == len(CATALOG.subscriptions)
    # Errors, warnings and informational findings alike: none in us-east-1 and eu-west-1. The template is the same
    # for every Region (${AWS::Region}); cfn-lint's schemas, not AWS, say where the AWS::EventsV2 types are:
    # sa-east-1 has neither, and they are all it reports there.
    found = sorted({(m.rule.id, m.message) for m in lint_file(path, (*CUSTOM_REGIONS, "sa-east-1"))})
    assert found == [("E3006", f"Resource type 'AWS::EventsV2::{kind}' does not exist in 'sa-east-1'")
                     for kind in ("EventBus", "Subscriber")]


def test_cfn_lint_would_say_so_if_the_custom_bus_template_were_wrong(tmp_path, custom_plan):
    """Five mistakes, each in a resource of its own, linted at once (a lint takes seconds): each is found there."""
    document = cloudformation_template(custom_plan)
    resources = document["Resources"]
    subscribers = [name for name, r in resources.items() if r["Type"] == "AWS::EventsV2::Subscriber"]
    mistakes = {
        (subscribers[0], "E3002"): lambda p: p.__setitem__("Typ", p.pop("Type")),  # not a property
        (subscribers[1], "E3034"): lambda p: p["RetryPolicy"].__setitem__("MaxRetryAttempts", 186),  # 0 to 185
        ("Bus", "E3034"): lambda p: p["StorageConfiguration"].__setitem__("RetentionPeriodInDays", 366),  # 1 to 365
        # A point in time is an integer of epoch seconds in CloudFormation (a timestamp in the API).
        (subscribers[2], "E3012"): lambda p: p.update(StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={
            "PointType": "TIMESTAMP", "StartingPoint": "2026-01-01T00:00:00Z"}),
        (subscribers[3], "E1010"): lambda p: p.__setitem__("EventBusArn", {"Fn::GetAtt": ["Bus", "Arn"]}),  # Classic's
    }
    for (logical, _), break_it in mistakes.items():
        break_it(resources[logical]["Properties"])
    path = tmp_path / "broken.json"
    path.write_text(render(document))
    found = {(m.path[1] if len(m.path) > 1 else None, m.rule.id) for m in lint_file(path, CUSTOM_REGIONS)}
    assert set(mistakes) <= found, found


def test_the_custom_template_holds_the_plans_resources_one_for_one(custom_plan):
    resources = cloudformation_template(custom_plan)["Resources"]
    named = Counter(_plan_kind_and_name(logical, r) for logical, r in resources.items())
    del named[None]  # log groups and event source mappings: one per function, which the plan's list leaves out
    assert named == Counter((r.kind, r.name) for r in plan_resources(custom_plan))
    functions = {r["Properties"]["FunctionName"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"}
    for kind in ("AWS::Logs::LogGroup", "AWS::Lambda::EventSourceMapping"):
        assert sum(r["Type"] == kind for r in resources.values()) == len(functions) == len(custom_plan.services)


def _plan_kind_and_name(logical, resource):
    """The plan's ``(kind, name)`` for a template resource (:func:`yafdp.plan.model.plan_resources`), or None."""
    properties, kind = resource["Properties"], resource["Type"]
    if kind == "AWS::SQS::Queue":
        return ("dead-letter queue" if logical.startswith("DeadLetterQueue") else "queue"), properties["QueueName"]
    found = {"AWS::EventsV2::EventBus": ("event bus", "Name"), "AWS::EventsV2::Subscriber": ("subscriber", "Name"),
             "AWS::Lambda::Function": ("function", "FunctionName"), "AWS::DynamoDB::Table": ("table", "TableName"),
             "AWS::IAM::Role": ("role", "RoleName"), "AWS::Scheduler::ScheduleGroup": ("schedule group", "Name")}.get(kind)
    return (found[0], properties[found[1]]) if found else None


def test_each_subscriber_is_its_create_subscriber_request_and_each_role_its_plans_policies(custom_plan):
    template = cloudformation_template(custom_plan)
    resources = template["Resources"]
    arns = {("Bus", "EventBusArn"): custom_plan.bus_arn()}
    for logical, r in resources.items():
        if r["Type"] == "AWS::SQS::Queue":
            arns[(logical, "Arn")] = custom_plan.queue_arn(r["Properties"]["QueueName"])
        elif r["Type"] == "AWS::IAM::Role":
            arns[(logical, "Arn")] = custom_plan.role_arn(r["Properties"]["RoleName"])
    tags = [{"Key": "Project", "Value": "yafdp"}, {"Key": "RunId", "Value": "tpl"}]
    subscribers = {r["Properties"]["Name"]: _resolved(r["Properties"], arns) for r in resources.values()
                   if r["Type"] == "AWS::EventsV2::Subscriber"}
    for subscriber in custom_plan.subscribers:
        assert subscribers[subscriber.name] == {**subscriber.request(custom_plan, custom_plan.bus_arn()), "Tags": tags}
        sqs = subscribers[subscriber.name]["InvokeConfiguration"]["SqsParameters"]
        assert sqs["MessageGroupId"] == "{% $events.SystemMetadata.EventGroupId %}"  # the order, to the function
    roles = {r["Properties"]["RoleName"]: _resolved(r["Properties"], arns) for r in resources.values()
             if r["Type"] == "AWS::IAM::Role"}
    for service in custom_plan.services:
        delivery, function = roles[service.delivery_role], roles[service.role]
        assert delivery["AssumeRolePolicyDocument"] == delivery_trust_policy(custom_plan.account)
        assert delivery["Policies"] == [{"PolicyName": "least-privilege", "PolicyDocument": service.delivery_policy}]
        assert function["Policies"] == [{"PolicyName": "least-privilege", "PolicyDocument": service.policy}]
    # No queue policy: on a Custom Event Bus the subscribers' delivery roles send (UG subscribers).
    assert not [r for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    assert template["Description"].endswith(REPLACEMENT_CAVEAT)


def _resolved(value, arns):
    """``value`` with its ``Fn::Sub`` strings as they are written and each ``Fn::GetAtt`` as ``arns`` names it."""
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"}:
            return value["Fn::Sub"]
        if set(value) == {"Fn::GetAtt"}:
            return arns[tuple(value["Fn::GetAtt"])]
        return {k: _resolved(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, arns) for v in value]
    return value


def test_the_custom_templates_queues_are_fifo_and_what_holds_data_is_kept_as_the_plan_chose(custom_plan):
    resources = cloudformation_template(custom_plan)["Resources"]
    queues = {r["Properties"]["QueueName"]: r for r in resources.values() if r["Type"] == "AWS::SQS::Queue"}
    assert queues and all(name.endswith(".fifo") and q["Properties"]["FifoQueue"] is True for name, q in queues.items())
    on_failure = {s.target.dead_letter_queue for s in custom_plan.subscribers}
    # Which MessageDeduplicationId EventBridge gives a failure record is not documented: content-based
    # deduplication keeps SQS from refusing the record (the plan's choice, yafdp.plan.custom_bus).
    assert {n for n, q in queues.items() if q["Properties"].get("ContentBasedDeduplication")} == on_failure
    assert (resources["Bus"]["DeletionPolicy"], resources["Bus"]["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert custom_plan.removal_policies["event bus"].why
    for logical, queue in queues.items():
        kind = "dead-letter queue" if "-dlq" in logical else "queue"
        assert queue["DeletionPolicy"] == custom_plan.removal_policies[kind].deletion


@pytest.fixture
def parliament_knowing_the_custom_event_bus():
    """parliament (1.6.4), whose Service Authorization data predates the Custom Event Bus, told the one thing the
    plan's policies need: ``events:PutEvents`` on a Custom Event Bus is checked against the bus's ARN,
    ``arn:…:events:<Region>:<account>:event-busv2/<name>/<id>`` (UG "Actions, resources, and condition keys for the
    Custom Event Bus", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-access-actions.html).
    Restored afterwards; nothing else of parliament's data is changed."""
    import parliament

    index = next(i for i, s in enumerate(parliament.iam_definition) if s["prefix"] == "events")
    original = parliament.iam_definition[index]
    events = copy.deepcopy(original)
    events["resources"].append({"resource": "event-busv2", "condition_keys": ["aws:ResourceTag/${TagKey}"],
                                "arn": "arn:${Partition}:events:${Region}:${Account}:event-busv2/${EventBusName}/${EventBusId}"})
    put_events = next(p for p in events["privileges"] if p["privilege"] == "PutEvents")
    put_events["resource_types"][0]["resource_type"] = "event-busv2*"
    parliament.iam_definition[index] = events  # statement.py holds the list itself: change its element
    try:
        yield parliament.analyze_policy_string
    finally:
        parliament.iam_definition[index] = original


def test_the_policy_linter_finds_nothing_in_any_policy_of_the_custom_plan(parliament_knowing_the_custom_event_bus):
    analyze = parliament_knowing_the_custom_event_bus
    plan = build_plan(CATALOG, "lint", account="123456789012", bus="custom")
    documents = [(f"{s.role} policy", s.policy) for s in plan.services]
    documents += [(f"{s.delivery_role} policy", s.delivery_policy) for s in plan.services]
    findings = {name: [(f.issue, f.detail) for f in analyze(json.dumps(document)).findings]
                for name, document in documents}
    assert {name: found for name, found in findings.items() if found} == {}
    assert all(not s.queue_policy for s in plan.services)  # no resource policies: the delivery roles send
    # It does look: the Classic bus's ARN is not the resource the Custom Event Bus's PutEvents is checked against.
    publisher = next(s for s in plan.services if s.may_emit)
    classic = copy.deepcopy(publisher.policy)
    classic["Statement"][0]["Resource"] = f"arn:aws:events:{plan.region}:{plan.account}:event-bus/{plan.bus}"
    assert [f.issue for f in analyze(json.dumps(classic)).findings] == ["RESOURCE_MISMATCH"]
    # Trust policies are not identity policies (parliament would want a Resource): each is the documented one.
    assert all(s.trust_policy == LAMBDA_TRUST_POLICY for s in plan.services)
    assert delivery_trust_policy(plan.account)["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}


def _catalog_with(tmp_path, change):
    """A copy of the shipped catalog whose payment service's first subscription ``change`` edits."""
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_DATA_DIR, root)
    file = root / "services" / "payment.json"
    document = json.loads(file.read_text())
    change(document["subscriptions"][0])
    file.write_text(json.dumps(document))
    return root


# 310 order ids: a SYSTEM_METADATA filter under 4,096 bytes (what cfn-lint checks of one Pattern) whose sum with the
# subscription's DATA filter is over the 4,096 bytes a subscriber's filters may add up to (UG filtering).
MANY_ORDERS = {"EventGroupId": [f"ord-{i:06d}" for i in range(310)]}

# What CloudFormation's schema does not check, and the plan refuses before a template is printed: (catalog change,
# what the one line says).
NOT_IN_THE_SCHEMA = {
    "two-filters-of-one-scope": (lambda s: s.update(subscriber={"Filters": [
        {"Scope": "SYSTEM_METADATA", "Pattern": {"EventGroupId": [{"prefix": "ord-"}]}},
        {"Scope": "SYSTEM_METADATA", "Pattern": {"EventGroupId": [{"exists": True}]}}]}),
        ["payment.json", "subscriptions[0].subscriber.Filters[1].Scope", "at most one filter per scope"]),
    "filters-over-4096-bytes": (lambda s: s.update(subscriber={"Filters": [
        {"Scope": "SYSTEM_METADATA", "Pattern": MANY_ORDERS}]}), ["payment.json", "4,096 bytes"]),
    "jsonata-that-does-not-parse": (lambda s: s.update(subscriber={"Transformer": {
        "Type": "JSONATA", "JsonataConfiguration": {"Expression": "{% $events.( %}"}}}),
        ["payment.json", "subscriptions[0].subscriber.Transformer.JsonataConfiguration.Expression"]),
    # Not a schema matter: a function given the bare event could not tell which handler to run.
    "function-target": (lambda s: s.update(target="lambda"), ["payment.json: subscriptions[0].target", "payment-charges-order",
                                                              "function", '"target": "queue"']),
}


@pytest.mark.parametrize("change, said", NOT_IN_THE_SCHEMA.values(), ids=NOT_IN_THE_SCHEMA)
def test_what_the_custom_bus_refuses_is_refused_before_a_template_is_printed(tmp_path, change, said):
    result = subprocess.run([sys.executable, "-m", "yafdp", "plan", "--bus", "custom", "--format", "cloudformation",
                             "--catalog", _catalog_with(tmp_path, change)], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert all(fragment in result.stderr for fragment in said), result.stderr


def test_the_same_mistakes_in_a_template_pass_cfn_lint(tmp_path, custom_plan):
    """Why the plan checks them: cfn-lint's schema has no rule for one filter per scope, for the filters' sum of
    bytes, or for JSONata (SPEC.md 9.2); the template holding each mistake lints clean."""
    document = cloudformation_template(custom_plan)
    subscribers = [r["Properties"] for r in document["Resources"].values() if r["Type"] == "AWS::EventsV2::Subscriber"]
    data = subscribers[0]["FilterConfiguration"]["Filters"][0]
    subscribers[0]["FilterConfiguration"]["Filters"].append(dict(data))  # DATA twice
    many = json.dumps(MANY_ORDERS, separators=(",", ":"))
    subscribers[1]["FilterConfiguration"]["Filters"].append({"Scope": "SYSTEM_METADATA", "Pattern": many})
    assert len(many) < 4096 < len(many) + len(subscribers[1]["FilterConfiguration"]["Filters"][0]["Pattern"])
    subscribers[2]["Transformer"] = {"Type": "JSONATA", "JsonataConfiguration": {"Expression": "{% $events.( %}"}}
    path = tmp_path / "unchecked.json"
    path.write_text(render(document))
    assert [str(m) for m in lint_file(path, CUSTOM_REGIONS)] == []


def test_plan_says_how_cloudformation_replaces_a_subscriber():
    result = subprocess.run([sys.executable, "-m", "yafdp", "plan", "--bus", "custom"], capture_output=True,
                            text=True, check=True)
    assert REPLACEMENT_CAVEAT in result.stdout and re.search(r"\nevent bus +Retain +Retain +the events", result.stdout)


@pytest.mark.parametrize("schedule_target", ["function", "universal"])
def test_the_deadlines_role_on_a_custom_event_bus_may_do_what_its_schedules_target_and_nothing_else(
        tmp_path, schedule_target, parliament_knowing_the_custom_event_bus):
    """AWS's Scheduler pages name no Custom Event Bus target, so bus.json's custom_event_bus.schedule_target chooses
    (yafdp.catalog.model.SCHEDULE_TARGETS): the role the schedules run with may invoke the Order function, or put the
    deadline on the bus; the template names the deployed bus by Fn::GetAtt only where the role puts events, cfn-lint
    finds nothing in it, and the policy linter finds nothing in the role's policy."""
    from dataclasses import replace

    catalog = replace(CATALOG, bus=replace(CATALOG.bus, custom=replace(CATALOG.bus.custom,
                                                                        schedule_target=schedule_target)))
    plan = template_plan(catalog, "tpl", bus="custom")
    assert plan.schedule_target == schedule_target
    document = cloudformation_template(plan)
    role = next(r for r in document["Resources"].values()
                if r["Type"] == "AWS::IAM::Role" and r["Properties"]["RoleName"] == plan.scheduler_role)
    [statement] = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    if schedule_target == "function":
        assert statement["Action"] == "lambda:InvokeFunction"
        assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:"
                                                     "function:tpl-order"}]
    else:
        assert (statement["Action"], statement["Resource"]) == ("events:PutEvents", {"Fn::GetAtt": ["Bus", "EventBusArn"]})
        assert statement["Condition"]["StringEquals"] == {"events:detail-type": ["Order_Timed_Out"]}
    path = tmp_path / "template.json"
    path.write_text(render(document))
    assert not [(m.rule.id, m.message) for m in lint_file(path, CUSTOM_REGIONS)]
    policy = build_plan(catalog, "lint", account="123456789012", bus="custom").scheduler_policy
    assert not parliament_knowing_the_custom_event_bus(json.dumps(policy)).findings
