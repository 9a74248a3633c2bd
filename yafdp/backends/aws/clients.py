"""The boto3 clients the AWS side uses, made in one place: for a moto server (an endpoint URL and dummy
credentials) or for AWS (the default credential chain and region)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yafdp.errors import ConfigurationError
from yafdp.plan.model import REGION

MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class AwsSetupError(ConfigurationError):
    """boto3 found no region or no credentials for AWS; says how to configure them."""


@dataclass(frozen=True)
class AwsClients:
    """One low-level client per service used (low-level clients are safe to share between threads)."""

    events: Any
    sqs: Any
    lambda_: Any
    dynamodb: Any
    iam: Any
    sts: Any
    logs: Any

    @property
    def region(self) -> str:
        return self.sqs.meta.region_name

    def account(self) -> str:
        """The account the credentials belong to (STS GetCallerIdentity)."""
        return self.sts.get_caller_identity()["Account"]

    def partition(self) -> str:
        """The partition of the credentials' account (``aws``, ``aws-cn``, ``aws-us-gov``): the second field of the
        caller's ARN (STS GetCallerIdentity), which every ARN of a deployment there must use."""
        return self.sts.get_caller_identity()["Arn"].split(":")[1]


# The connections each client keeps: the pollers of a run on moto (at most yafdp.runs.options.MAX_CONCURRENCY per
# queue) share them with the client that fires orders and the settle check.
MAX_POOL_CONNECTIONS = 50


def make_clients(endpoint_url: str | None = None, region: str | None = None, session=None) -> AwsClients:
    """Clients for a moto server at ``endpoint_url`` (dummy credentials, region ``eu-west-1`` unless given),
    or, without an endpoint, for AWS with the default credential chain and region.

    Examples
    --------
    >>> clients = make_clients("http://127.0.0.1:5000")
    >>> clients.region
    'eu-west-1'
    """
    import boto3
    from botocore.config import Config

    if session is None:
        session = boto3.session.Session(region_name=region or (REGION if endpoint_url else None))
    if session.region_name is None:
        raise AwsSetupError("no AWS region configured: set AWS_DEFAULT_REGION (e.g. eu-west-1), "
                            "or run `aws configure`, then try again")
    if endpoint_url is None and session.get_credentials() is None:
        raise AwsSetupError("no AWS credentials found by the default chain: set AWS_PROFILE or "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`")
    # Pollers, the client that fires orders and the settle check share the clients: allow their connections.
    config = Config(max_pool_connections=MAX_POOL_CONNECTIONS, retries={"mode": "standard", "max_attempts": 5})
    extra = {"endpoint_url": endpoint_url, **MOTO_CREDENTIALS} if endpoint_url else {}

    def client(name: str):
        return session.client(name, config=config, **extra)

    return AwsClients(events=client("events"), sqs=client("sqs"), lambda_=client("lambda"),
                      dynamodb=client("dynamodb"), iam=client("iam"), sts=client("sts"), logs=client("logs"))
