"""Where the service functions run: in this process behind queue pollers (moto), or in Lambda (AWS).

Both offer the same three things: ``start()``/``stop()`` the consumption of the service queues, and
``call(service, entrypoint, payload)`` for a service's API (how a client places an order).
"""

from __future__ import annotations

import json

from yafdp.catalog import Catalog
from yafdp.runtime.envelope import PublishError
from yafdp.runtime.faults import Faults
from yafdp.plan import DeploymentPlan
from yafdp.errors import RequestRefusedError

from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.poller import QueuePoller
from yafdp.backends.aws.custom_bus import deployed_bus_arn
from yafdp.backends.aws.function import FunctionConfig, ServiceFunction, publisher


class InProcessFunctions:
    """Every service's function in this process, each fed by a :class:`~yafdp.backends.aws.poller.QueuePoller` that
    keeps up to ``concurrency`` batches in hand at once, each in a thread of its own, as Lambda runs several
    invocations of one function at once.

    Lambda's SQS event source mapping polls a standard queue with several pollers and invokes the function
    once per batch, concurrently ("Lambda starts processing five batches at a time with five concurrent
    invocations of your function", Lambda developer guide, "Understanding SQS event source mapping scaling
    behavior"); each batch here is up to the mapping's ``BatchSize`` messages, hidden while the function has
    them (what it did not finish comes back after the queue's visibility timeout, counted from the receive), on
    which the function is invoked in a thread of its own.
    """

    def __init__(self, plan: DeploymentPlan, catalog: Catalog, world, clients: AwsClients, *,
                 faults: Faults = Faults(), seed: int = 0, wait_seconds: int = 1, concurrency: int = 4):
        bus_arn = deployed_bus_arn(plan, clients) if plan.bus_kind == "custom" else ""
        events = publisher(plan, clients.events, clients.eventbridgev2, bus_arn)
        self.functions = {
            s.name: ServiceFunction(FunctionConfig.for_service(plan, s.name, faults, seed, bus_arn), catalog, plan,
                                    world, events, clients.dynamodb, scheduler=clients.scheduler)
            for s in plan.services
        }
        self.pollers = [
            QueuePoller(clients.sqs, clients.sqs.get_queue_url(QueueName=s.queue)["QueueUrl"], plan.queue_arn(s.queue),
                        _as_lambda(self.functions[s.name]), batch_size=s.batch_size, wait_seconds=wait_seconds,
                        visibility_timeout=s.visibility_timeout_seconds, faults=faults, seed=seed,
                        subscriptions={r.name: r.subscription for r in plan.routes}, concurrency=concurrency)
            for s in plan.services
        ]

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop(wait=False)  # all at once, then wait for the batches each has in hand
        for poller in self.pollers:
            poller.stop()

    def call(self, service: str, entrypoint: str, payload) -> object:
        return self.functions[service].call(entrypoint, payload)

    @property
    def errors(self) -> list[str]:
        return [e for p in self.pollers for e in p.errors]


def _as_lambda(function: ServiceFunction):
    def handler(event: dict, context) -> dict:
        return function.handle_batch(event)
    return handler


class LambdaFunctions:
    """The functions as deployed to Lambda: the event source mappings consume the queues; an API call is
    a synchronous invocation (as API Gateway would make it)."""

    def __init__(self, plan: DeploymentPlan, clients: AwsClients):
        self.plan, self.lambda_ = plan, clients.lambda_

    def start(self) -> None:
        """Nothing to do: the event source mappings were enabled by the deployer."""

    def stop(self) -> None:
        """Nothing to do: Lambda keeps consuming until the deployment is destroyed."""

    @property
    def errors(self) -> list[str]:
        """Nothing to report from here: Lambda's errors are in the functions' log groups."""
        return []

    def call(self, service: str, entrypoint: str, payload) -> object:
        function = self.plan.service(service).function
        answer = self.lambda_.invoke(FunctionName=function, Payload=json.dumps({"entrypoint": entrypoint, "payload": payload}))
        body = json.loads(answer["Payload"].read() or b"null")
        if answer.get("FunctionError"):
            raise RuntimeError(f"{function} failed: {body.get('errorType')}: {body.get('errorMessage')}")
        error = body.get("error")
        if error is None:
            return body.get("result")
        if error.get("request_refused"):
            raise RequestRefusedError(error["field"], error["problem"], error["message"])
        raise PublishError(error["message"])
