"""A served Custom Event Bus's subscribers reaching their targets on the emulated account: SQS queues, standard
or FIFO, through boto3 at the configured endpoint (a moto server), with the delivery role checked as far as IAM
is emulated.

What EventBridge does for an SQS target (UG "Amazon SQS target",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-target-sqs.html; SPEC.md 4.8): one
``SendMessageBatch`` of up to 10 messages per batch, one event per message, with the subscriber's
``SqsParameters`` as the engine resolved them for each event (``MessageGroupId``, ``MessageDeduplicationId``,
``DelaySeconds``, ``MessageAttributes``); the delivery role ("InvokeConfiguration.RoleArn") must trust
``events.amazonaws.com`` and be allowed ``sqs:SendMessage`` on the target, and on the on-failure queue for the
failure records (UG "Subscribers", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-subscribers.html).
A failure is reported with the dead-letter record's error codes (UG "Retrying event delivery", errorCode table):
``ACCESS_DENIED``, ``RESOURCE_NOT_FOUND``, ``THROTTLING``, ``CUSTOMER_VALIDATION`` (SQS refused a message, with
its own message: e.g. a FIFO queue without ``MessageGroupId``), ``REQUEST_TOO_LARGE``,
``INVOCATION_DEPENDENCY_INTERNAL`` (SQS failed).

How far the role is honoured: moto stores roles and policies but does not enforce them (moto: "IAM-like Access
Control", off by default), so the check is made here, by the project's own evaluator
(:mod:`yafdp.backends.local.iam`): the role must exist (at the ARN's path), its trust policy must allow
``sts:AssumeRole`` to the service ``events.amazonaws.com``, and one of its inline or attached policies must allow
the action on the queue (``Effect: Allow`` statements, their ``Action`` and ``Resource`` with a trailing
``*``). Not emulated: ``Deny`` statements, conditions (the trust policy's ``aws:SourceAccount`` included),
permission boundaries, SCPs, the queue's own resource policy and KMS keys. The send itself is made with the
endpoint's credentials (moto accepts any).

A delivery's ``SendMessageBatch`` runs in a worker thread, outside the engine's lock; its answer is handed back
to the engine on the bus's clock, which runs it under the lock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from yafdp.custom_event_bus import arns
from yafdp.custom_event_bus.dead_letters import DeadLetterRecord
from yafdp.custom_event_bus.targets import Delivery, Failures

from yafdp.backends.aws.deployer import policy_document
from yafdp.backends.local.iam import policy_allows

EVENTS_PRINCIPAL = "events.amazonaws.com"
SEND = "sqs:SendMessage"
WORKERS = 8  # SendMessageBatch calls in flight at once
# How long an answer about a role holds. EventBridge delivers with the role's temporary credentials, and a change
# to a role or its policies reaches them after a while ("changes that you make in IAM ... can take time to
# become visible", IAM user guide, "Troubleshoot IAM": changes are eventually consistent); here it is seen by
# deliveries within this many seconds. A choice, a setting.
ROLE_CACHE_SECONDS = 2.0
_DENIED = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "KMS.AccessDeniedException"}
_MISSING = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
_THROTTLED = {"Throttling", "ThrottlingException", "RequestThrottled", "AWS.SimpleQueueService.RequestThrottled"}
_TOO_LARGE = {"AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong"}


class SqsSubscriberTargets:
    """``targets(arn)`` and ``dead_letter(queue_arn, record)`` for a :class:`~yafdp.custom_event_bus.service.CustomEventBusService`
    whose SQS queues live at the endpoint of ``sqs`` and whose roles at that of ``iam`` (boto3 clients).

    ``clock``: the bus's clock, whose ``call_at`` hands a delivery's answer back to the engine. ``role_of(subscriber_arn)``:
    the delivery role of a subscriber (for its failure records). Any target that is not an SQS queue fails its
    deliveries with ``RESOURCE_NOT_FOUND``, saying that only SQS targets are reached from here. :meth:`close`
    waits for the sends in flight.
    """

    def __init__(self, sqs, iam, clock, role_of: Callable[[str], str], *, workers: int = WORKERS,
                 role_cache_seconds: float = ROLE_CACHE_SECONDS):
        self.sqs, self.iam, self.clock, self.role_of = sqs, iam, clock, role_of
        self.role_cache_seconds = role_cache_seconds
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sqs target")
        self._urls: dict[str, str] = {}
        self._answers: dict[tuple[str, str, str], tuple[float, str | None]] = {}

    def __call__(self, arn: str):
        return _SqsTarget(self, arn) if arns.target_kind(arn) == "sqs" else _Unreachable(arn)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ---------------------------------------------------------------- the emulated account

    def denied(self, role_arn: str, action: str, resource: str) -> str | None:
        """Why ``role_arn`` may not be used by EventBridge to ``action`` on ``resource``; None when it may (an
        answer holds for ``role_cache_seconds``)."""
        key, now = (role_arn, action, resource), self.clock.now()
        known = self._answers.get(key)
        if known is None or now - known[0] >= self.role_cache_seconds:
            known = self._answers[key] = (now, self._denied(role_arn, action, resource))
        return known[1]

    def _denied(self, role_arn: str, action: str, resource: str) -> str | None:
        name = role_arn.rsplit("/", 1)[-1]
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchEntity", "NoSuchEntityException"):
                return f"the delivery role {role_arn} does not exist, so EventBridge cannot assume it"
            raise
        if role["Arn"] != role_arn:
            return f"the delivery role {role_arn} does not exist (a role named {name} is {role['Arn']})"
        if not _trusts_events(policy_document(role.get("AssumeRolePolicyDocument"))):
            return f"the delivery role {role_arn} does not trust {EVENTS_PRINCIPAL}, so EventBridge cannot assume it"
        if not any(policy_allows(p, action, resource) for p in self._policies(name)):
            return f"the delivery role {role_arn} is not allowed {action} on {resource}"
        return None

    def _policies(self, role: str):
        iam = self.iam
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            yield policy_document(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            yield policy_document(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)
                            ["PolicyVersion"]["Document"])

    def queue_url(self, arn: str) -> str:
        """The URL of the queue named by ``arn`` (cached); raises the client's ``QueueDoesNotExist``."""
        url = self._urls.get(arn)
        if url is None:
            match = arns.SQS_ARN.fullmatch(arn)
            url = self.sqs.get_queue_url(QueueName=match.group(3), QueueOwnerAWSAccountId=match.group(2))["QueueUrl"]
            self._urls[arn] = url
        return url

    def send(self, delivery: Delivery) -> Failures:
        """One ``SendMessageBatch`` of the delivery's items (in order); the items that failed, by index."""
        everything = range(len(delivery.items))
        try:
            refusal = self.denied(delivery.config.role_arn, SEND, delivery.target_arn)
            if refusal is not None:
                return {i: ("ACCESS_DENIED", refusal) for i in everything}
            answer = self.sqs.send_message_batch(QueueUrl=self.queue_url(delivery.target_arn),
                                                 Entries=[_entry(str(i), item) for i, item in enumerate(delivery.items)])
        except (ClientError, BotoCoreError) as exc:
            self._urls.pop(delivery.target_arn, None)
            failure = _failure(exc, delivery.target_arn)
            return {i: failure for i in everything}
        return {int(f["Id"]): ("CUSTOMER_VALIDATION" if f.get("SenderFault") else "INVOCATION_DEPENDENCY_INTERNAL",
                               f"{f.get('Code')}: {f.get('Message')}") for f in answer.get("Failed", [])}

    def dead_letter(self, queue_arn: str, record: DeadLetterRecord) -> bool:
        """Send a failure record to the subscriber's on-failure queue with its role; False when that fails (the
        role may not send there, the queue does not exist...): the engine then counts the events lost
        (``OnFailureDestinationFailed``). On a FIFO queue the record's ``MessageGroupId`` is the events' event
        group ("EventBridge sets each record's MessageGroupId from the events' EventGroupId", UG retry), or the
        subscriber's id for events without one (not documented: a choice), and its ``MessageDeduplicationId`` a
        hash of the record (SPEC A.13). Called by the engine, which waits for it (once per batch given up on)."""
        subscriber = record.body["subscriberArn"]
        try:
            if self.denied(self.role_of(subscriber), SEND, queue_arn) is not None:
                return False
            extra = {}
            if arns.is_fifo_queue(queue_arn):
                extra = {"MessageGroupId": record.group_id or subscriber.rsplit("/", 1)[-1],
                         "MessageDeduplicationId": record.deduplication_id}
            self.sqs.send_message(QueueUrl=self.queue_url(queue_arn), MessageBody=record.text(), **extra,
                                  MessageAttributes={k: {"DataType": "String", "StringValue": v}
                                                     for k, v in record.attributes.items() if v})
        except (ClientError, BotoCoreError, LookupError):
            self._urls.pop(queue_arn, None)
            return False
        return True


class _SqsTarget:
    def __init__(self, targets: SqsSubscriberTargets, arn: str):
        self.targets, self.arn = targets, arn

    def deliver(self, delivery: Delivery, done: Callable[[Failures], None]) -> None:
        clock = self.targets.clock

        def send() -> None:
            try:
                failures = self.targets.send(delivery)
            except Exception as exc:  # the endpoint failed in an unforeseen way: a failed delivery, retried
                failures = {i: ("INTERNAL_SERVER_ERROR", f"{type(exc).__name__}: {exc}") for i in range(len(delivery.items))}
            clock.call_at(clock.now(), lambda: done(failures))

        self.targets._pool.submit(send)


class _Unreachable:
    def __init__(self, arn: str):
        self.arn = arn

    def deliver(self, delivery: Delivery, done: Callable[[Failures], None]) -> None:
        done({i: ("RESOURCE_NOT_FOUND", f"the served Custom Event Bus reaches SQS queues only; {self.arn} is a "
                                        f"{arns.target_kind(self.arn) or 'non-ARN'} target")
              for i in range(len(delivery.items))})


def _entry(ident: str, item) -> dict:
    """One ``SendMessageBatch`` entry for a delivery item: its body and the resolved ``SqsParameters``."""
    parameters = item.parameters
    entry = {"Id": ident, "MessageBody": item.body()}
    for name in ("MessageGroupId", "MessageDeduplicationId"):
        if parameters.get(name):
            entry[name] = parameters[name]
    if parameters.get("DelaySeconds") not in (None, ""):
        entry["DelaySeconds"] = int(parameters["DelaySeconds"]) if str(parameters["DelaySeconds"]).isdigit() else \
            parameters["DelaySeconds"]
    for block in ("MessageAttributes", "MessageSystemAttributes"):
        if parameters.get(block):
            entry[block] = {name: {k: v for k, v in value.items() if v is not None}
                            for name, value in parameters[block].items()}
    return entry


def _failure(exc: Exception, target: str) -> tuple[str, str]:
    if not isinstance(exc, ClientError):
        return "INVOCATION_DEPENDENCY_INTERNAL", f"{type(exc).__name__}: {exc}"
    error, status = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    code, message = error.get("Code", ""), f"{error.get('Code')}: {error.get('Message')}"
    if code in _DENIED:
        return "ACCESS_DENIED", message
    if code in _MISSING:
        return "RESOURCE_NOT_FOUND", f"the target queue {target} does not exist ({message})"
    if code in _THROTTLED:
        return "THROTTLING", message
    if code in _TOO_LARGE:
        return "REQUEST_TOO_LARGE", message
    return ("CUSTOMER_VALIDATION" if 400 <= status < 500 else "INVOCATION_DEPENDENCY_INTERNAL"), message


def _trusts_events(trust: dict) -> bool:
    """Whether a trust policy lets the EventBridge service principal assume the role (conditions not evaluated)."""
    for statement in trust.get("Statement", []):
        principal = statement.get("Principal") or {}
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and EVENTS_PRINCIPAL in services and \
                {"sts:AssumeRole", "sts:*", "*"} & set(actions):
            return True
    return False
