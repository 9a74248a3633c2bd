"""The Custom Event Bus API of one account in one Region: buses, subscribers, tags and ``PutEvents``, each
operation taking and answering the members the service model names.

This is the one implementation of the bus. A local run drives it in-process on its virtual clock; a server command
(not built yet: the endpoint issue) is to put the smithy-rpc-v2-cbor wire protocol in front of it. Operations and their errors follow
the botocore model ``eventbridgev2/2025-05-15`` and the API Reference
(https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/Welcome.html); behaviour follows the user guide
(``shared/custom-event-bus/SPEC.md`` cites each rule). Buses are created and deleted asynchronously
(``CREATING`` -> ``ACTIVE``, ``DELETING`` -> gone), after :class:`Choices` delays (0 s by default: at the clock's
next step).
"""

from __future__ import annotations

import json
import random
from typing import Callable

from yafdp.custom_event_bus import arns
from yafdp.custom_event_bus.bus import EventBus
from yafdp.custom_event_bus.choices import DEFAULT_CHOICES, Choices
from yafdp.custom_event_bus.clock import Clock
from yafdp.custom_event_bus.configuration import apply_mutable, check_create, check_name, check_resume, check_tags
from yafdp.custom_event_bus.dead_letters import DeadLetterRecord
from yafdp.custom_event_bus.errors import ApiError, invalid, not_found
from yafdp.custom_event_bus.events import StoredEvent, timestamp
from yafdp.custom_event_bus.limits import (DEFAULT_RETENTION_DAYS, MAX_BUSES_PER_ACCOUNT, MAX_DESCRIPTION_LENGTH,
                                          MAX_SUBSCRIBERS_PER_BUS, RETENTION_DAYS_RANGE)
from yafdp.custom_event_bus.subscriber import Subscriber
from yafdp.custom_event_bus.targets import Target

TargetRouter = Callable[[str], "Target | None"]
DeadLetterSink = Callable[[str, DeadLetterRecord], bool]


class _NoObserver:
    def settled(self, subscriber, delivery, failures) -> None:
        pass

    def gave_up(self, subscriber, items, record, outcome) -> None:
        pass


class CustomEventBusService:
    """The account's Custom Event Buses (``EventBridgeV2``) on ``clock``.

    Parameters
    ----------
    clock
        the bus's time (:class:`~yafdp.custom_event_bus.clock.Clock`).
    targets
        ``targets(arn) -> Target | None``: how a subscriber reaches its target (None: the target does not
        exist, a ``RESOURCE_NOT_FOUND`` delivery failure).
    dead_letter_queues
        ``dead_letter_queues(queue_arn, record) -> bool``: sends an on-failure record; False when the queue
        cannot take it (``OnFailureDestinationFailed``).
    observer
        told what each subscriber did (:class:`~yafdp.custom_event_bus.subscriber.DeliveryObserver`), and
        ``published(bus, event)`` for each event stored, when it has that method.
    account, region, partition
        where the buses are; ARNs are built from them.
    choices
        what to do where AWS's documentation is silent (:class:`Choices`).
    enforce_quotas
        refuse ``PutEvents`` over the per-group and per-bus rates with ``ThrottlingException`` (the served
        endpoint); a local run leaves rates to its timing model.
    seed
        ids and retry jitter derive from it.
    """

    def __init__(self, clock: Clock, *, targets: TargetRouter = lambda arn: None,
                 dead_letter_queues: DeadLetterSink = lambda arn, record: False, observer=None,
                 account: str = "000000000000", region: str = "eu-west-1", partition: str = "aws",
                 choices: Choices = DEFAULT_CHOICES, enforce_quotas: bool = False, seed: int = 0):
        self.clock, self.targets, self.dead_letter_queues = clock, targets, dead_letter_queues
        self.observer = observer or _NoObserver()
        self.account, self.region, self.partition = account, region, partition
        self.choices, self.enforce_quotas, self.seed = choices, enforce_quotas, seed
        self.buses: dict[str, EventBus] = {}  # by ARN
        self._rng = random.Random(f"{seed}:custom-event-bus")
        self._tokens: dict[str, tuple[str, str, dict]] = {}  # ClientToken -> (operation, request, response)
        self._deleted: set[str] = set()  # subscriber ARNs deleted here (DeleteSubscriber is idempotent)
        self._changing: dict[str, float] = {}  # bus ARN -> until when a subscriber create or delete runs on it

    # ---------------------------------------------------------------- helpers

    def observer_published(self, bus: EventBus, event: StoredEvent) -> None:
        published = getattr(self.observer, "published", None)
        if published is not None:
            published(bus, event)

    def bus(self, arn, *, member: str = "EventBusArn", active: bool = False) -> EventBus:
        """The bus named by ``arn``; raises ``ResourceNotFoundException`` (or ``InvalidInputException`` for
        what is not a bus ARN), and ``InvalidStateException`` when ``active`` and it is not ``ACTIVE``."""
        if not isinstance(arn, str) or not arns.BUS_ARN.fullmatch(arn):
            raise invalid(member, f"must be a Custom Event Bus ARN (…:event-busv2/<name>/<id>), got {arn!r}")
        bus = self.buses.get(arn)
        if bus is None or bus.state == "DELETED":
            raise not_found("event bus", arn)
        if active and bus.state != "ACTIVE":
            raise ApiError("InvalidStateException", f"the bus {arn} is {bus.state}, not ACTIVE")
        return bus

    def subscriber(self, arn, member: str = "SubscriberArn") -> Subscriber:
        if not isinstance(arn, str) or not arns.SUBSCRIBER_ARN.fullmatch(arn):
            raise invalid(member, f"must be a subscriber ARN (…:subscriber/<name>/<id>), got {arn!r}")
        for bus in self.buses.values():
            for subscriber in bus.subscribers.values():
                if subscriber.arn == arn:
                    return subscriber
        raise not_found("subscriber", arn)

    def _one_change_at_a_time(self, bus: EventBus) -> None:
        """Refuse a subscriber create or delete while another runs on ``bus`` (``ConcurrentModificationException``,
        UG subscribers); this one then runs for ``Choices.subscriber_change_seconds``."""
        now = self.clock.now()
        if now < self._changing.get(bus.arn, float("-inf")):
            raise ApiError("ConcurrentModificationException", f"another subscriber is being created or deleted on "
                           f"{bus.arn}: one at a time per bus; try again")
        self._changing[bus.arn] = now + self.choices.subscriber_change_seconds

    def _idempotent(self, operation: str, request: dict, run: Callable[[], dict]) -> dict:
        """``ClientToken``: the same token with the same request answers the first answer again; with another
        request, ``IdempotentParameterMismatchException`` (M ``ClientToken``)."""
        token = request.get("ClientToken")
        if token is None:
            return run()
        if not isinstance(token, str) or not 1 <= len(token) <= 64:
            raise invalid("ClientToken", "must be 1 to 64 printable ASCII characters")
        body = json.dumps({k: v for k, v in request.items() if k != "ClientToken"}, sort_keys=True, default=str)
        seen = self._tokens.get(token)
        if seen is not None:
            if seen[:2] != (operation, body):
                raise ApiError("IdempotentParameterMismatchException", f"ClientToken {token!r} was used with "
                               "another request")
            return seen[2]
        response = run()
        self._tokens[token] = (operation, body, response)
        return response

    def undelivered(self) -> int:
        """Events the account's subscribers have to deliver still: taken and not delivered or given up on yet
        (waiting, in flight, or waiting to be tried again), or on their bus and not read yet. What a run on a served
        bus waits to be 0 (with its queues empty) before it calls the saga settled: the bus delivers after it
        answers PutEvents, as AWS does."""
        return sum(s.backlog + s.in_flight for bus in self.buses.values() for s in bus.subscribers.values()
                   if s.running)

    # ---------------------------------------------------------------- buses

    def create_event_bus(self, **request) -> dict:
        """``CreateEventBus``: the bus is ``CREATING``, then ``ACTIVE`` (``EventBusActive`` waiter)."""
        return self._idempotent("CreateEventBus", request, lambda: self._create_bus(request))

    def _create_bus(self, request: dict) -> dict:
        name = check_name(request.get("Name"))
        description = _description(request.get("Description"))
        retention = _retention(request.get("StorageConfiguration"))
        tags = check_tags(request.get("Tags"))
        live = [b for b in self.buses.values() if b.state != "DELETED"]
        if any(b.name == name for b in live):
            raise ApiError("ResourceAlreadyExistsException", f"an event bus named {name!r} exists in this account "
                           "and Region")
        if len(live) >= MAX_BUSES_PER_ACCOUNT:
            raise ApiError("LimitExceededException", f"an account has at most {MAX_BUSES_PER_ACCOUNT} Custom Event "
                           "Buses by default (an adjustable quota)")
        now = self.clock.now()
        arn = arns.bus_arn(self.partition, self.region, self.account, name, arns.new_id(self._rng))
        bus = EventBus(self, name, arn, now, retention, description, tags, request.get("EncryptionConfiguration"))
        self.buses[arn] = bus

        def activate() -> None:
            if bus.state == "CREATING":
                bus.state, bus.last_modified = "ACTIVE", self.clock.now()
        self.clock.call_at(now + self.choices.bus_creating_seconds, activate)
        answer = bus.describe()
        answer.pop("LastModifiedTime")
        return answer

    def describe_event_bus(self, **request) -> dict:
        return self.bus(request.get("EventBusArn")).describe()

    def update_event_bus(self, **request) -> dict:
        """``UpdateEventBus``: description and retention (a supplied ``StorageConfiguration`` replaces the
        stored one whole, UG update); the bus stays ``ACTIVE`` (UG create: only an encryption change passes
        through ``UPDATING``, which this emulator does not model)."""
        bus = self.bus(request.get("EventBusArn"), active=True)
        if "Description" in request:
            bus.description = _description(request["Description"])
        if "StorageConfiguration" in request:
            bus.store.retention_days = _retention(request["StorageConfiguration"])
        if "EncryptionConfiguration" in request:
            bus.encryption = request["EncryptionConfiguration"]
        bus.last_modified = self.clock.now()
        answer = bus.describe()
        answer.pop("CreationTime")
        return answer

    def delete_event_bus(self, **request) -> dict:
        """``DeleteEventBus``: refused with ``ResourceInUseException`` while the bus has subscribers; the bus is
        ``DELETING``, then gone (``EventBusDeleted`` waiter). Idempotent: deleting a bus being deleted is fine."""
        bus = self.bus(request.get("EventBusArn"))
        if bus.state == "DELETING":
            return {}
        if bus.state == "CREATING":
            raise ApiError("InvalidStateException", f"the bus {bus.arn} is CREATING: delete it once it is ACTIVE")
        if bus.subscribers:
            raise ApiError("ResourceInUseException", f"the bus {bus.arn} still has {len(bus.subscribers)} "
                           "subscriber(s): delete them first")
        bus.state = "DELETING"

        def gone() -> None:
            bus.state = "DELETED"
            self.buses.pop(bus.arn, None)
        self.clock.call_at(self.clock.now() + self.choices.bus_deleting_seconds, gone)
        return {}

    def list_event_buses(self, **request) -> dict:
        prefix = request.get("NamePrefix") or ""
        buses = sorted((b for b in self.buses.values() if b.state != "DELETED" and b.name.startswith(prefix)),
                       key=lambda b: b.name)
        summaries = [{k: v for k, v in b.describe().items() if k in _BUS_SUMMARY} | {"EventBusAccountId": self.account}
                     for b in buses]
        return _page(summaries, request, "EventBuses")

    # ---------------------------------------------------------------- subscribers

    def create_subscriber(self, **request) -> dict:
        """``CreateSubscriber``: validated as :func:`~yafdp.custom_event_bus.configuration.check_create` says;
        the bus must be ``ACTIVE``; a subscriber name is unique on its bus (``ResourceAlreadyExistsException``)."""
        return self._idempotent("CreateSubscriber", request, lambda: self._create_subscriber(request))

    def _create_subscriber(self, request: dict) -> dict:
        bus = self.bus(request.get("EventBusArn"), active=True)
        now = self.clock.now()
        config = check_create(request, account=self.account, choices=self.choices, now=now,
                              window_start=bus.store.window_start)
        tags = check_tags(request.get("Tags"))
        if config.name in bus.subscribers:
            raise ApiError("ResourceAlreadyExistsException", f"the bus already has a subscriber named {config.name!r}")
        if len(bus.subscribers) >= MAX_SUBSCRIBERS_PER_BUS:
            raise ApiError("LimitExceededException", f"a bus has at most {MAX_SUBSCRIBERS_PER_BUS:,} subscribers")
        self._one_change_at_a_time(bus)
        store = bus.store
        if config.starting_position == "LATEST":
            cursor = store.next_seq
        elif config.point_type == "HORIZON":
            cursor = store.first_seq
        else:
            cursor = store.seq_at(config.starting_point)
        arn = arns.subscriber_arn(self.partition, self.region, self.account, config.name, arns.new_id(self._rng))
        subscriber = Subscriber(bus, config, arn, arn.rsplit("/", 1)[1], now, cursor, tags,
                                random.Random(f"{self.seed}:{arn}:jitter"))
        bus.add_subscriber(subscriber)
        if cursor < store.next_seq:  # it starts in the past: history is read after the replay start-up delay
            self.clock.call_at(now + self.choices.replay_start_delay_seconds, subscriber.kick)
        return _subscriber_answer(subscriber, "CreationTime")

    def describe_subscriber(self, **request) -> dict:
        subscriber = self.subscriber(request.get("SubscriberArn"))
        answer = {"SubscriberArn": subscriber.arn, **subscriber.config.request,
                  "CreationTime": timestamp(subscriber.created_at), "LastModifiedTime": timestamp(subscriber.last_modified)}
        if subscriber.revoked:
            answer["Revoked"] = True
        return answer

    def update_subscriber(self, **request) -> dict:
        """``UpdateSubscriber``: see :func:`~yafdp.custom_event_bus.configuration.apply_mutable` for what a
        supplied block does; ``State`` pauses and resumes (``ResumePosition``). An update never moves the read
        position except a resume with ``LATEST`` (UG update)."""
        subscriber = self.subscriber(request.get("SubscriberArn"))
        if subscriber.revoked:
            raise ApiError("InvalidStateException", f"the subscriber {subscriber.arn} was revoked by the bus owner")
        changes = {k: v for k, v in request.items() if k not in ("SubscriberArn", "ResumePosition")}
        resume = check_resume(request, subscriber.config, subscriber.replaying)
        before = subscriber.config
        subscriber.config = apply_mutable(before, changes, self.account, self.choices, update=True)
        subscriber.last_modified = self.clock.now()
        if subscriber.config.filter is not before.filter:
            subscriber.bus.refilter(subscriber)
        if before.state == "RUNNING" and subscriber.config.state == "STOPPED":
            subscriber.stopped()
        elif resume is not None:
            subscriber.resumed(resume)
        return _subscriber_answer(subscriber, "LastModifiedTime")

    def delete_subscriber(self, **request) -> dict:
        """``DeleteSubscriber``: delivery stops. Idempotent, as the model marks it: a subscriber already deleted
        answers as deleted (``ResourceNotFoundException`` only for an ARN that never named one here)."""
        arn = request.get("SubscriberArn")
        try:
            subscriber = self.subscriber(arn)
        except ApiError as exc:
            if exc.code == "ResourceNotFoundException" and arn in self._deleted:
                return {}
            raise
        self._one_change_at_a_time(subscriber.bus)
        subscriber.bus.remove_subscriber(subscriber)
        self._deleted.add(arn)
        return {}

    def list_subscribers(self, **request) -> dict:
        prefix = request.get("NamePrefix") or ""
        buses = [self.bus(request["EventBusArn"])] if request.get("EventBusArn") is not None else list(self.buses.values())
        found = sorted((s for b in buses for s in b.subscribers.values() if s.name.startswith(prefix)),
                       key=lambda s: (s.bus.name, s.name))
        summaries = [{"SubscriberArn": s.arn, "Name": s.name, "EventBusArn": s.bus.arn,
                      "TargetArn": s.config.target_arn, "Type": "FIFO" if s.config.fifo else "UNORDERED",
                      "State": s.config.state, "CreationTime": timestamp(s.created_at),
                      "LastModifiedTime": timestamp(s.last_modified), "SubscriberAccountId": self.account,
                      **({"Revoked": True} if s.revoked else {})} for s in found]
        return _page(summaries, request, "Subscribers")

    # ---------------------------------------------------------------- events and tags

    def put_events(self, **request) -> dict:
        """``PutEvents`` on the bus ``EventBusArn`` (see :meth:`EventBus.put_events`); ``PublisherAccount`` (not
        an AWS member) lets a test publish as another account."""
        bus = self.bus(request.get("EventBusArn"))
        return bus.put_events(request.get("Entries"), request.get("DeduplicationConfiguration"),
                              request.get("PublisherAccount", self.account))

    def _resource(self, arn, member: str = "ResourceArn"):
        if isinstance(arn, str) and arns.SUBSCRIBER_ARN.fullmatch(arn):
            return self.subscriber(arn, member)
        return self.bus(arn, member=member)

    def tag_resource(self, **request) -> dict:
        resource = self._resource(request.get("ResourceArn"))
        tags = check_tags(request.get("Tags"))
        merged = {**resource.tags, **tags}
        check_tags(merged)
        resource.tags.clear()
        resource.tags.update(merged)
        return {}

    def untag_resource(self, **request) -> dict:
        resource = self._resource(request.get("ResourceArn"))
        keys = request.get("TagKeys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise invalid("TagKeys", "must list tag keys")
        for key in keys:
            resource.tags.pop(key, None)
        return {}

    def list_tags_for_resource(self, **request) -> dict:
        return {"Tags": dict(self._resource(request.get("ResourceArn")).tags)}


_BUS_SUMMARY = ("Name", "EventBusArn", "Description", "CreationTime", "LastModifiedTime", "State", "StateReason")
OPERATIONS = {"CreateEventBus": "create_event_bus", "DescribeEventBus": "describe_event_bus",
              "UpdateEventBus": "update_event_bus", "DeleteEventBus": "delete_event_bus",
              "ListEventBuses": "list_event_buses", "CreateSubscriber": "create_subscriber",
              "DescribeSubscriber": "describe_subscriber", "UpdateSubscriber": "update_subscriber",
              "DeleteSubscriber": "delete_subscriber", "ListSubscribers": "list_subscribers",
              "PutEvents": "put_events", "TagResource": "tag_resource", "UntagResource": "untag_resource",
              "ListTagsForResource": "list_tags_for_resource"}


def _subscriber_answer(subscriber: Subscriber, time_member: str) -> dict:
    request = subscriber.config.request
    answer = {"SubscriberArn": subscriber.arn, "Name": subscriber.name, "EventBusArn": subscriber.bus.arn,
              "Type": request["Type"], "StartingPosition": request["StartingPosition"], "State": request["State"],
              time_member: timestamp(subscriber.created_at if time_member == "CreationTime" else subscriber.last_modified)}
    if "PointInTimeConfiguration" in request:
        answer["PointInTimeConfiguration"] = request["PointInTimeConfiguration"]
    return answer


def _description(value) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH):
        raise invalid("Description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    return value


def _retention(storage) -> int:
    if storage is None:
        return DEFAULT_RETENTION_DAYS
    if not isinstance(storage, dict):
        raise invalid("StorageConfiguration", "must be a structure with RetentionPeriodInDays")
    days = storage.get("RetentionPeriodInDays", DEFAULT_RETENTION_DAYS)
    low, high = RETENTION_DAYS_RANGE
    if isinstance(days, bool) or not isinstance(days, int) or not low <= days <= high:
        raise invalid("StorageConfiguration.RetentionPeriodInDays", f"must be a whole number of days from {low} to "
                      f"{high}, got {days!r}")
    return days


def _page(items: list, request: dict, member: str) -> dict:
    """One page of a list: ``MaxResults`` 1-100 (default 100), ``NextToken`` the position to continue from."""
    limit = request.get("MaxResults", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise invalid("MaxResults", f"must be from 1 to 100, got {limit!r}")
    token = request.get("NextToken")
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.startswith("p") or not token[1:].isdigit():
            raise invalid("NextToken", "is not a token this list gave")
        start = int(token[1:])
    page = items[start:start + limit]
    answer = {member: page}
    if start + limit < len(items):
        answer["NextToken"] = f"p{start + limit}"
    return answer
