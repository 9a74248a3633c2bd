"""One contract for where a deployment's service functions run: in this process behind queue pollers (moto),
or in Lambda. An API call returns the service's answer; a refused one raises the service's own error."""

import dataclasses
import io
import json
import os

import pytest

from yafdp.backends.aws import lambda_handler
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.function import FunctionConfig, ServiceFunction
from yafdp.backends.aws.functions import InProcessFunctions, LambdaFunctions
from yafdp.backends.aws.teardown import destroy
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runtime.interfaces import FunctionRunner
from yafdp.runs.workload import planned_requests
from yafdp.errors import RequestRefusedError

CATALOG = load_catalog()
WORLD = load_marketplace()
ORDERS = [o.request for o in planned_requests(CATALOG, 3, seed=21, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})]


@pytest.fixture(scope="module")
def deployment(clients):
    plan = deploy(clients, CATALOG, backend="moto", prefix="fr", echo=lambda line: None)
    yield plan, clients
    destroy(clients, "fr", echo=lambda line: None)


class FunctionRunnerContract:
    def test_it_is_a_function_runner(self, runner):
        assert isinstance(runner, FunctionRunner) and isinstance(runner.errors, list)

    def test_an_api_call_returns_the_services_answer(self, runner, order):
        assert runner.call("order", "place_order", order) == order["order_id"]

    def test_a_refused_call_raises_the_services_error_naming_the_field(self, runner, order):
        with pytest.raises(RequestRefusedError, match="amount") as refused:
            runner.call("order", "place_order", {**order, "amount": -1})
        assert refused.value.field == "amount"


class TestInProcessFunctions(FunctionRunnerContract):
    @pytest.fixture
    def runner(self, deployment):
        plan, clients = deployment
        functions = InProcessFunctions(plan, CATALOG, WORLD, clients)
        functions.start()
        yield functions
        functions.stop()

    @pytest.fixture
    def order(self):
        return ORDERS[0]


class _LambdaOnThisProcess:
    """Lambda's ``Invoke`` as a fake client: the deployed function's entry point, run here against moto
    (moto cannot execute Lambda code without a container engine)."""

    def __init__(self, plan, clients):
        self.plan, self.clients = plan, clients

    def invoke(self, FunctionName, Payload):  # noqa: N803 (boto3's parameter names)
        service = next(s.name for s in self.plan.services if s.function == FunctionName)
        config = FunctionConfig.for_service(self.plan, service)
        # The function's environment, as the deployer sets it, and the function warm with this test's moto clients.
        lambda_handler._functions[config] = ServiceFunction(config, CATALOG, self.plan, WORLD, self.clients.events,
                                                            self.clients.dynamodb)
        saved = dict(os.environ)
        os.environ.update(config.to_environment())
        try:
            answer = lambda_handler.lambda_handler(json.loads(Payload), None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            lambda_handler._functions.pop(config, None)
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


class TestLambdaFunctions(FunctionRunnerContract):
    @pytest.fixture
    def runner(self, deployment):
        plan, clients = deployment
        return LambdaFunctions(plan, dataclasses.replace(clients, lambda_=_LambdaOnThisProcess(plan, clients)))

    @pytest.fixture
    def order(self):
        return ORDERS[1]
