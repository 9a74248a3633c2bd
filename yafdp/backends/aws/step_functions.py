"""Deploying the saga's state machine (the orchestration style) with injected boto3 clients."""

from __future__ import annotations

import json

from yafdp.catalog import Catalog
from yafdp.errors import RefusedError
from yafdp.plan.model import DeploymentPlan
from yafdp.plan.step_functions import state_machine_definition, state_machine_policy


def deploy_state_machine(sfn, iam, catalog: Catalog, plan: DeploymentPlan, *, workflow: str = "STANDARD") -> str:
    """Create (or update) the state machine and its role on AWS with the given boto3 clients; return its ARN.

    The services' functions must exist (the choreography's deployer creates them): their entry point runs a Task's
    payload through :class:`yafdp.backends.tasks.TaskRunner`
    (:meth:`yafdp.backends.aws.function.ServiceFunction.run_task`). Build ``plan`` for the deploying account
    (:func:`yafdp.backends.aws.deployment.deploy` returns one): the role's policy names its functions' ARNs.
    Resources are tagged like the rest of the plan.

    (Run in ``tests/integration/test_documented_examples.py``: the state machine deploys under the plan's name, on moto.)
    """
    if workflow not in ("STANDARD", "EXPRESS"):
        raise RefusedError(f"workflow must be STANDARD or EXPRESS, got {workflow!r}")
    name = plan.state_machine
    role_name = f"{name}-role"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "states.amazonaws.com"}}]}
    tags = [{"Key": k, "Value": v} for k, v in plan.tags.items()]
    try:
        role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="invoke-services", PolicyDocument=json.dumps(state_machine_policy(plan)))
    definition = json.dumps(state_machine_definition(catalog, plan))
    arn = plan.state_machine_arn()
    existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
    if existing:
        sfn.update_state_machine(stateMachineArn=existing[0], definition=definition, roleArn=role_arn)
        return existing[0]
    created = sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn, type=workflow,
                                       tags=[{"key": k, "value": v} for k, v in plan.tags.items()])
    return created.get("stateMachineArn", arn)
