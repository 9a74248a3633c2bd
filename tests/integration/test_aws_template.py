"""`yafdp plan --format cloudformation`: the plan as a template that AWS's own validators accept (cfn-lint,
with AWS's resource specification: zero findings), whose IAM policies a maintained policy linter
(parliament) finds nothing in, and whose stack, created on moto's CloudFormation, holds the same resources
as the boto3 deployer creates."""

import ast
import json
import subprocess
import sys

import pytest
import yaml

from yafdp.backends.aws.deployment import SETTINGS, deploy
from yafdp.backends.aws.package import build_package
from yafdp.backends.aws.teardown import destroy, inventory
from yafdp.catalog import load_catalog
from yafdp.plan import build_plan
from yafdp.plan.cloudformation import cloudformation_template, render, template_plan
from yafdp.plan.model import LAMBDA_TRUST_POLICY

CATALOG = load_catalog()


def _plan_command(tmp_path, output):
    result = subprocess.run([sys.executable, "-m", "yafdp.cli", "plan", "--format", "cloudformation", "--output", output,
                             "--prefix", "tpl"], capture_output=True, text=True, check=True)
    path = tmp_path / f"template.{output}"
    path.write_text(result.stdout)
    return path


def lint_file(path):
    """cfn-lint's findings in a template file, its informational rules included (I3042: a partition written into an
    ARN; I3011: a stateful resource without a chosen DeletionPolicy and UpdateReplacePolicy; I3013: a queue left to
    the default retention). cfn-lint is imported on first use, not at collection: it takes half a second to import,
    in every pytest-xdist worker."""
    from cfnlint.api import ManualArgs, lint_file

    return lint_file(path, config=ManualArgs(include_checks=["I"]))


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
    assert len(stateful) == 34
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

    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=clients.region)
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_url, region_name=clients.region)
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
        assert stack == boto and len(boto) == len(inventory(clients, "bto")) - len(
            [r for r in inventory(clients, "bto") if r.kind == "role policy"])
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
        found.append(("rule", same(rule["Name"]), rule["EventPattern"]))
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
