"""The state machine generated from the catalog, on moto: valid Amazon States Language by the parser of moto's
Step Functions, and deployed with its role, in place the second time."""

import json

import boto3
import pytest
from moto import mock_aws

from yafdp.backends.aws.step_functions import deploy_state_machine
from yafdp.catalog import load_catalog
from yafdp.plan import build_plan
from yafdp.plan.step_functions import state_machine_definition


CATALOG = load_catalog()


def test_the_definition_is_valid_amazon_states_language():
    # imported here, not at collection: the parser takes a second to import, in every pytest-xdist worker
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = state_machine_definition(CATALOG, build_plan(CATALOG))
    AmazonStateLanguageParser.parse(json.dumps(definition))  # the parser of moto's Step Functions (from LocalStack)


def test_the_hybrids_review_workflow_is_valid_amazon_states_language():
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from yafdp.analysis.hybrid import review_definition

    AmazonStateLanguageParser.parse(json.dumps(review_definition()))  # chapter 09's workflow inside the Restaurant


def test_the_state_machine_deploys_with_its_role_and_redeploys_in_place(monkeypatch):
    catalog = CATALOG
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    plan = build_plan(catalog, prefix="t1")
    with mock_aws():
        sfn, iam = boto3.client("stepfunctions"), boto3.client("iam")
        arn = deploy_state_machine(sfn, iam, catalog, plan)
        assert deploy_state_machine(sfn, iam, catalog, plan) == arn
        described = sfn.describe_state_machine(stateMachineArn=arn)
        assert json.loads(described["definition"]) == state_machine_definition(catalog, plan)
        policy = iam.get_role_policy(RoleName="t1-order-saga-role", PolicyName="invoke-services")["PolicyDocument"]
        assert policy["Statement"][0]["Action"] == "lambda:InvokeFunction"
