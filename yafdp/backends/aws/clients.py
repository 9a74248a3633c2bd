"""The boto3 clients the AWS side uses, made in one place: for a moto server (an endpoint URL and dummy
credentials) or for AWS (the default credential chain and region). The Custom Event Bus's client
(``eventbridgev2``) goes to AWS's own endpoint on AWS; with moto, which has no such service, to the bus
``yafdp serve`` serves (its ``bus_endpoint_url``), and there is none without one."""

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
    scheduler: Any = None  # EventBridge Scheduler: the schedule group, and the schedules a function makes
    eventbridgev2: Any = None  # the Custom Event Bus (None: no endpoint serves it, e.g. moto alone)
    # Seconds between the looks of the Custom Event Bus's waiters (a bus ACTIVE, a bus gone; botocore's model waits
    # 2 s): 1 s on AWS, this project's choice; a tenth of a second on a bus served on this machine, which answers at
    # once (make_clients' bus_endpoint_url), so a deployment there does not wait a second for a bus ACTIVE in half.
    bus_waiter_delay: float = 1.0

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


# The connections each client keeps by default: botocore's 10 would make more threads than that wait for one.
MAX_POOL_CONNECTIONS = 50
# Beyond the pollers of a run on moto (each a thread with a connection of its own to each client), the
# connections of the client that fires orders, the settle check and the export.
SPARE_CONNECTIONS = 10


def pool_for(threads: int) -> int:
    """The connections a client needs so that ``threads`` threads calling it at once (the batches in hand of a run
    on moto, each in a handler, and each queue's long poll) never wait for one: with fewer, 50 pollers per queue
    of six services took turns on 50 connections, the long polls of empty queues holding them while messages
    waited on busy ones.

    Examples
    --------
    >>> pool_for(4 * 6), pool_for(50 * 6)
    (50, 310)
    """
    return max(MAX_POOL_CONNECTIONS, threads + SPARE_CONNECTIONS)


def aws_session(endpoint_url: str | None = None, region: str | None = None, session=None):
    """The boto3 session the clients of :func:`make_clients` come from, once it has a region and (without
    ``endpoint_url``: on AWS) credentials. A run calls it before it touches its run folder, so that a missing
    region or missing credentials is refused with the folder as it was.

    Raises :class:`AwsSetupError` naming what is missing and how to set it."""
    import boto3

    if session is None:
        session = boto3.session.Session(region_name=region or (REGION if endpoint_url else None))
    if session.region_name is None:
        raise AwsSetupError("no AWS region configured: set AWS_DEFAULT_REGION (e.g. eu-west-1), "
                            "or run `aws configure`, then try again")
    if endpoint_url is None and session.get_credentials() is None:
        raise AwsSetupError("no AWS credentials found by the default chain: set AWS_PROFILE or "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`")
    return session


def make_clients(endpoint_url: str | None = None, region: str | None = None, session=None,
                 bus_endpoint_url: str | None = None, custom_bus: bool = False,
                 max_pool_connections: int = MAX_POOL_CONNECTIONS) -> AwsClients:
    """Clients for a moto server at ``endpoint_url`` (dummy credentials, region ``eu-west-1`` unless given),
    or, without an endpoint, for AWS with the default credential chain and region. There is an ``eventbridgev2``
    client (the Custom Event Bus) at ``bus_endpoint_url`` when given (a served bus, which takes any credentials),
    or at AWS's own endpoint with ``custom_bus`` and no ``endpoint_url``; else none. Each keeps up to
    ``max_pool_connections`` connections (see :func:`pool_for`).

    Examples
    --------
    >>> clients = make_clients("http://127.0.0.1:5000")
    >>> clients.region
    'eu-west-1'
    """
    from botocore.config import Config

    session = aws_session(endpoint_url, region, session)
    # Pollers, the client that fires orders and the settle check share the clients: allow their connections.
    config = Config(max_pool_connections=max_pool_connections, retries={"mode": "standard", "max_attempts": 5})
    extra = {"endpoint_url": endpoint_url, **MOTO_CREDENTIALS} if endpoint_url else {}

    def client(name: str):
        return session.client(name, config=config, **extra)

    if bus_endpoint_url is not None:
        bus = session.client("eventbridgev2", config=config, endpoint_url=bus_endpoint_url, **MOTO_CREDENTIALS)
    else:
        bus = client("eventbridgev2") if custom_bus and endpoint_url is None else None
    return AwsClients(events=client("events"), sqs=client("sqs"), lambda_=client("lambda"),
                      dynamodb=client("dynamodb"), iam=client("iam"), sts=client("sts"), logs=client("logs"),
                      scheduler=client("scheduler"), eventbridgev2=bus,
                      bus_waiter_delay=1.0 if bus_endpoint_url is None else 0.1)
