"""The saga's plan on a Custom Event Bus: one subscriber per catalog subscription, each with one target, its
filters, ordering, retry policy and on-failure queue, and a delivery role per service.

What changes from the Classic plan (UG "Migrating from Custom Event Bus - Classic",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-migrate.html): "a rule and one of its
targets" becomes "one subscriber"; the rule's pattern becomes a ``DATA`` filter; the target's DLQ becomes the
subscriber's ``OnFailureConfiguration``; the queue's resource policy is replaced by the subscriber's delivery
role, which "must be in the subscriber's own account and trust events.amazonaws.com; needs the target's action and
sqs:SendMessage on the DLQ" (UG "Subscribers",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-subscribers.html). A ``FIFO`` subscriber
sends to its service's SQS FIFO queue with ``MessageGroupId`` = the event group and ``MessageDeduplicationId`` =
``aws:EventId`` (as the user guide's example does) and the subscriber's name, so the order holds to the function
and two subscribers of one service that match the same event both reach it (UG "Amazon SQS target",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-target-sqs.html; UG transform); a
function target is invoked ``REQUEST_RESPONSE``, "use for ordered processing" (UG "Ordering",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from yafdp.plan.model import REMOVAL_POLICIES, RemovalPolicy, Route

# What a stack deletion or replacement does with a Custom Event Bus plan's resources (see
# yafdp.plan.model.REMOVAL_POLICIES): the bus is kept, as the tables and dead-letter queues are. It is the only copy
# of the events its subscribers' failure records point to (a record names the events, it does not hold them), and a
# redrive replays them from the bus while it retains them (UG "Retries and dead-letter queues",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html).
CUSTOM_BUS_REMOVAL_POLICIES = {
    **REMOVAL_POLICIES,
    "event bus": RemovalPolicy("Retain", "Retain", "the events, kept for the bus's retention period: the only copy of "
                               "what the on-failure queues' records point to, replayed from the bus by a redrive"),
    "queue": RemovalPolicy("Delete", "Delete", "messages on their way; every event is also retained on the bus, from "
                           "which a subscriber starting at a point in time delivers it again"),
}

# What a FIFO on-failure queue adds: content-based deduplication. Which MessageDeduplicationId EventBridge gives a
# failure record it sends to a FIFO queue is not documented (UG retry says only that it sets the MessageGroupId);
# "If you don't provide a MessageDeduplicationId and the queue doesn't have ContentBasedDeduplication set, the action
# fails with an error" (SQS API reference, SendMessage,
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html), and a record that
# cannot be written is lost (OnFailureDestinationFailed). With it, a MessageDeduplicationId EventBridge does send
# "overrides the generated one" (same page): the setting costs nothing either way. The project's choice (AWS's
# Serverless Land pattern eventbridge-custom-sqs-fifo-yaml-sam does the same "as a precaution").
ON_FAILURE_FIFO_ATTRIBUTES = {"ContentBasedDeduplication": "true"}

# What CloudFormation does when it must replace a subscriber, said where the template and the plan are shown. The
# resource's "Replacement uses delete_then_create" (CloudFormation Template Reference, AWS::EventsV2::Subscriber,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-eventsv2-subscriber.html); its
# Name, EventBusArn, InvokeConfiguration.TargetArn, Type, StartingPosition and PointInTimeConfiguration are
# create-only (same page), and the plan's subscribers start at LATEST.
REPLACEMENT_CAVEAT = ("A subscriber whose name, type or target changes is replaced, deleted before it is created again "
                      "(delete_then_create); starting at LATEST, the new one never receives what was published in "
                      "between")


def refuse_function_targets(subscribers, where: str) -> None:
    """Refuse, in one line naming the catalog file and key, a subscriber whose target is a function where
    ``where`` (e.g. "on moto or AWS") cannot give it one: the function would get the bare event, without the
    subscriber's name to pick its handler by (the local backend runs it). Raises
    :class:`~yafdp.errors.RefusedError`."""
    from yafdp.errors import RefusedError

    direct = [s for s in subscribers if s.target.kind == "lambda"]
    if direct:
        first = direct[0]
        more = f" (and {len(direct) - 1} more)" if len(direct) > 1 else ""
        raise RefusedError(f"{first.defined_in}.target: a Custom Event Bus subscriber whose target is a function "
                           f"({first.subscription}{more}) is run on the local backend only, not {where}: the function "
                           "would get the bare event, without the subscriber's name to pick its handler by; give it "
                           "its service's queue (\"target\": \"queue\")")


def delivery_trust_policy(account: str) -> dict:
    """The trust of a delivery role: EventBridge may assume it for this account's subscribers only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}


@dataclass(frozen=True)
class SubscriberPlan(Route):
    """One subscriber of the Custom Event Bus (see :class:`~yafdp.plan.model.Route`): its filters (``DATA`` =
    the subscription's pattern, plus any other scope the subscription adds), ``type`` (``FIFO``/``UNORDERED``),
    target (the service's queue, or its function), on-failure queue (``target.dead_letter_queue``), retry
    policy (``target.retry_policy``: retries and seconds), transformer, batch size and delivery role;
    ``defined_in``: the catalog file and key of its subscription (``services/payment.json: subscriptions[0]``)."""

    type: str
    role: str
    filters: tuple[dict, ...] = ()
    transformer: dict = field(default_factory=lambda: {"Type": "RAW"})
    invocation_type: str | None = None
    batch_size: int = 10
    defined_in: str = ""

    @property
    def fifo(self) -> bool:
        return self.type == "FIFO"

    def filter_configuration(self) -> dict:
        """``FilterConfiguration`` as ``CreateSubscriber`` takes it: one filter per scope, patterns as JSON text."""
        filters = [{"Scope": "DATA", "Pattern": json.dumps(self.pattern, separators=(",", ":"))}]
        filters += [dict(f) for f in self.filters]
        return {"Filters": filters, "Language": "EVENT_BRIDGE_PATTERN"}

    def request(self, plan, bus_arn: str) -> dict:
        """The ``CreateSubscriber`` request for this subscriber on the bus ``bus_arn`` (the plan's ARNs)."""
        invoke: dict = {"TargetArn": plan.target_arn(self), "RoleArn": plan.role_arn(self.role)}
        if self.target.kind == "lambda":
            invoke["LambdaParameters"] = {"InvocationType": self.invocation_type or "REQUEST_RESPONSE"}
        else:
            # The function learns which subscriber's handler to run, and whether the event is LIVE or REPLAY, from
            # the message's attributes (a name may be a literal, a value an expression resolved per event: M
            # SqsMessageAttributeValue); yafdp.backends.aws.queue_message reads them.
            sqs = {"MessageAttributes": {
                "subscriber": {"DataType": "String", "StringValue": self.name},
                "delivery_type": {"DataType": "String", "StringValue": '{% $events.SystemMetadata."aws:DeliveryType" %}'}}}
            if self.target.queue.endswith(".fifo"):
                sqs["MessageGroupId"] = "{% $events.SystemMetadata.EventGroupId %}"
                # The event's id and this subscriber's name: two subscribers of one service that match the same
                # event hand it to the same FIFO queue, and the second copy must not be taken for the first's.
                sqs["MessageDeduplicationId"] = ('{% $events.SystemMetadata."aws:EventId" & "#" & '
                                                 + json.dumps(self.name) + ' %}')
            invoke["SqsParameters"] = sqs
        request = {"Name": self.name, "EventBusArn": bus_arn, "Type": self.type, "InvokeConfiguration": invoke,
                   "FilterConfiguration": self.filter_configuration(), "Transformer": dict(self.transformer),
                   "RetryPolicy": {"MaxRetryAttempts": self.target.retry_policy.maximum_retry_attempts,
                                   "MaxEventAgeInSeconds": self.target.retry_policy.maximum_event_age_seconds,
                                   "RetryStrategy": "ALL"},
                   "BatchConfiguration": {"MaxBatchSize": self.batch_size, "MaxBatchWindowInSeconds": 0}}
        if self.target.dead_letter_queue:
            request["OnFailureConfiguration"] = {"Arn": plan.queue_arn(self.target.dead_letter_queue)}
        return request
