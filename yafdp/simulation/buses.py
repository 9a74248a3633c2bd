"""The event bus as the latency model sees it, one class per kind of bus: when a producer's PutEvents call is
accepted, when the bus invokes a rule's target, how long the event then takes to reach it, and when the bus
gives up on it.

:class:`EventBusModel` is the seam: :class:`~yafdp.simulation.timing.SimulatedTiming` (and through it both the
full simulation and the replay, :mod:`yafdp.simulation.replay`) asks a bus model these questions and acts on
the answers, so a kind of bus with other limits is one more class here. :class:`ClassicEventBus` is the bus
this project deploys by default: "Custom Event Bus - Classic", the EventBridge bus that routes with rules and
targets. :class:`CustomEventBus` is the new Custom Event Bus (subscribers instead of rules), whose limits are per
event group and per bus: each PutEvents call tells it the request's ``groups``.
:func:`event_bus_for` makes the model of a run's kind of bus; :func:`yafdp.runs.bootstrap.timing_for` (the full
simulation) and :func:`yafdp.simulation.replay.replay` (a recording keeps the event group and size of every event
it published) both take it from there.

Every answer is a time in virtual seconds, or None when the bus refuses: the caller then does what AWS
does with a refusal (the producer's delivery fails and its queue delivers it again; the event goes to the
rule's dead-letter queue, or is dropped).
"""

from __future__ import annotations

import math
import random
from math import floor
from typing import Iterator, Mapping, Protocol, Sequence, runtime_checkable

from yafdp.runtime.envelope import MAX_ENTRIES_PER_PUT
from yafdp.runtime.publishing import PUBLISH_ATTEMPTS, PUBLISH_BACKOFF_SECONDS
from yafdp.simulation.profiles import Distribution
from yafdp.simulation.quotas import Quotas, TokenBucket


@runtime_checkable
class EventBusModel(Protocol):
    """What the latency model asks of a kind of event bus.

    ``name`` names the kind; ``delivery`` is the latency from the bus invoking a target to the event being
    there (for a queue target, the SQS event source mapping's poll comes on top).
    """

    name: str
    delivery: Distribution

    def put_events(self, at: float, entries: int, groups: Mapping[str, tuple[int, int]] | None = None) -> float | None:
        """When a producer's PutEvents of ``entries`` entries, first tried at ``at``, is accepted, its retries
        included; None when the producer gives up (its retries ran out while the bus refused it). ``groups``:
        the request's entries that name an event group, as ``{EventGroupId: (entries, bytes)}`` (a bus whose
        limits are per group needs it; None when no entry names one, or the caller does not know)."""

    def invoke(self, at: float, retry_policy) -> float | None:
        """When the bus invokes a rule's target for an event it accepted at ``at``; None when it gives up on the
        event first (``retry_policy``: the target's ``maximum_retry_attempts`` and ``maximum_event_age_seconds``),
        so the event goes to the rule's dead-letter queue or is dropped."""

    def report(self) -> dict:
        """What the bus did: requests throttled and refused, invocations delayed and given up on."""


class ClassicEventBus:
    """EventBridge's Custom Event Bus - Classic (rules and targets), at an account's quotas.

    **PutEvents** is limited per account and Region ("PutEvents throttle limit in transactions per second",
    Amazon EventBridge quotas, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html): a
    token bucket of ``quotas.eventbridge_put_events_per_second``, one token per request of up to 10 entries. A
    throttled request is retried by its producer after a backoff with full jitter, up to
    :data:`~yafdp.runtime.publishing.PUBLISH_ATTEMPTS` tries in all (the SDKs' standard retry mode,
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html); it is accepted at the first try
    at or after the bucket has a token for it, and refused when no try is (the producer gets a
    ``ThrottlingException``). A request's tries keep their place in line: the model does not make other
    requests overtake it between two of its tries.

    **Invocations** of rules' targets are limited per account and Region too ("Invocations throttle limit in
    transactions per second", same page): a token bucket of ``quotas.eventbridge_invocations_per_second``. "If the
    invocation of a target fails due to a problem with the target service or account throttling, EventBridge
    reattempts for up to 24 hours" (Amazon EventBridge quotas, earlier edition of the same page) and "retry
    attempts continue until either the maximum number of attempts is made or until the duration of the
    MaximumEventAgeInSeconds is met" (RetryPolicy, EventBridge API reference,
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html). How often EventBridge
    tries a throttled invocation again is not documented, so the model makes a choice: a throttled invocation
    waits its turn in line (first come, first served) for as long as the target's maximum event age allows,
    and its attempts are not counted; one whose turn would come later than that is given up on (dead-lettered
    or dropped), and takes no token.

    ``rng`` draws the producers' backoffs; it is used only when a request is throttled, so a run that stays
    under the quotas draws nothing from it.
    """

    name = "EventBridge Custom Event Bus - Classic"

    def __init__(self, quotas: Quotas, delivery: Distribution, rng: random.Random):
        self.delivery = delivery
        self._put_events = TokenBucket(quotas.eventbridge_put_events_per_second)
        self._invocations = TokenBucket(quotas.eventbridge_invocations_per_second)
        self._rng = rng
        self.put_events_refused = self.invocations_expired = 0

    def put_events(self, at: float, entries: int, groups: Mapping[str, tuple[int, int]] | None = None) -> float | None:
        bucket = self._put_events
        for _ in range(1 if entries <= MAX_ENTRIES_PER_PUT else -(-entries // MAX_ENTRIES_PER_PUT)):
            if bucket.admit(at, 0.0) is None:  # throttled: the producer tries again after its backoffs
                ready = bucket.earliest(at)
                for tried in retried_at(at, self._rng):
                    if tried >= ready:
                        break
                else:
                    self.put_events_refused += 1
                    return None
                at = bucket.take(tried, at)
        return at

    def invoke(self, at: float, retry_policy) -> float | None:
        invoked = self._invocations.admit(at, retry_policy.maximum_event_age_seconds)
        if invoked is None:
            self.invocations_expired += 1
        return invoked

    def report(self) -> dict:
        put, invocations = self._put_events, self._invocations
        return {
            "put_events_throttled": put.throttled, "put_events_throttle_delay_s": round(put.delay, 3),
            "put_events_refused": self.put_events_refused,
            "invocations_throttled": invocations.throttled,
            "invocations_throttle_delay_s": round(invocations.delay, 3),
            "invocations_expired": self.invocations_expired,
        }


def retried_at(at: float, rng: random.Random) -> Iterator[float]:
    """When a producer tries a throttled PutEvents request again, first tried at ``at`` (seconds): after a backoff
    with full jitter from :data:`~yafdp.runtime.publishing.PUBLISH_BACKOFF_SECONDS`, doubling, up to
    :data:`~yafdp.runtime.publishing.PUBLISH_ATTEMPTS` tries in all (the SDKs' standard retry mode,
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html). Each backoff is drawn from
    ``rng`` only when the next try is asked for.

    Examples
    --------
    >>> tries = list(retried_at(10.0, random.Random(1)))
    >>> len(tries) == PUBLISH_ATTEMPTS - 1 and 10.0 < tries[0] < tries[-1] <= 10.0 + 0.1 + 0.2
    True
    """
    tried, backoff = at, PUBLISH_BACKOFF_SECONDS
    for _ in range(PUBLISH_ATTEMPTS - 1):
        tried += rng.uniform(0.0, backoff)
        backoff *= 2
        yield tried


class OneSecondWindows:
    """A limit on what may be taken in any one-second window (``limit``, in the caller's unit: events, or events +
    KB), checked as the Custom Event Bus engine's served endpoint checks it (:mod:`yafdp.custom_event_bus.bus`):
    what was taken in the second that ends at the request, ``(t - 1, t]``, plus the request, must not pass it.

    Requests are asked in the order the simulation decides them, which is not quite the order of their times (a
    handler's request is decided when the handler starts, for when it ends), so what was taken is kept by time,
    in whole-second slots, and a request counts only what was taken in its own trailing second. Slots more than
    :attr:`KEPT_SECONDS` older than the latest request are forgotten (a request asked for longer ago than that,
    which this project's handlers never are, would see them as empty).

    Examples
    --------
    >>> window = OneSecondWindows(3)
    >>> window.fits(0.2, 2), window.take(0.2, 2), window.fits(0.5, 2), window.fits(1.25, 2), window.fits(1.3, 1)
    (True, None, False, True, True)
    """

    KEPT_SECONDS = 5
    __slots__ = ("limit", "_slots", "_takes", "_newest", "_kept")

    def __init__(self, limit: float, *, few: bool = False):
        self.limit = limit
        # whole second -> [total taken, [(time, amount), ...]]; with ``few`` (a window expected to take little, such
        # as an event group's), None until a request could pass the limit: till then every take is in ``_takes``
        self._slots: dict[int, list] | None = None if few else {}
        self._takes: list[tuple[float, float]] | None = [] if few else None
        self._newest = -math.inf
        # the total of every take kept (amounts are whole events and KB in 1/1024ths, so the sums are exact): while
        # it leaves room for a request, so does any second of it
        self._kept = 0.0

    def fits(self, t: float, amount: float) -> bool:
        """Whether ``amount`` taken at ``t`` (seconds) keeps the second ending at ``t`` within the limit."""
        if self._kept + amount <= self.limit:
            return True
        slots = self._slots if self._slots is not None else self._slotted()
        second = math.floor(t)
        here, before = slots.get(second), slots.get(second - 1)
        taken = (here[0] if here else 0.0) + (before[0] if before else 0.0)
        if taken + amount <= self.limit:  # the two slots hold the whole trailing second, and maybe more
            return True
        taken = sum(a for at, a in (here[1] if here else ()) if at <= t) + \
            sum(a for at, a in (before[1] if before else ()) if at > t - 1.0)
        return taken + amount <= self.limit

    def take(self, t: float, amount: float) -> None:
        """Record ``amount`` taken at ``t`` (seconds)."""
        second = floor(t)
        self._kept += amount
        takes = self._takes
        if takes is not None:
            takes.append((t, amount))
            if second > self._newest:
                self._newest = second
            return
        slots = self._slots
        slot = slots.get(second)
        if slot is None:
            slot = slots[second] = [0.0, []]
            if second > self._newest:
                self._newest = second
                for old in [s for s in slots if s < second - self.KEPT_SECONDS]:
                    self._kept -= slots.pop(old)[0]
        slot[0] += amount
        slot[1].append((t, amount))

    def _slotted(self) -> dict[int, list]:
        """The takes kept so far, put in their slots as if they had been taken so (the slots forgotten since too)."""
        takes, self._takes, self._slots, self._kept, self._newest = self._takes, None, {}, 0.0, -math.inf
        for t, amount in takes:
            self.take(t, amount)
        return self._slots

    @property
    def newest(self) -> float:
        """The latest whole second anything was taken in (``-inf`` before anything was)."""
        return self._newest


# How far below a group's limit a total must be to be called never throttled: the window adds the same amounts in
# another order, which may round the last bits otherwise.
GROUP_TOTAL_MARGIN = 1e-6


class CustomEventBus:
    """EventBridge's new Custom Event Bus (subscribers; not Classic's rules), at its quotas.

    **Ingestion** is limited twice, neither adjustable ("Amazon EventBridge quotas", Custom Event Bus quotas,
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html#eb-custom-bus-quotas; digest
    ``shared/custom-event-bus/SPEC.md`` 2.5 and 8.1):

    - per bus, ``quotas.custom_event_bus_events_per_second`` (500,000) events a second, all publishers together;
    - per event group, ``quotas.custom_event_bus_group_events_plus_kb_per_second`` (1,500) "events + total KB in
      any one-second window": each entry counts 1 plus its bytes / 1024 (how KB are rounded is not documented:
      not at all, as the engine counts them; the bytes as
      :func:`yafdp.custom_event_bus.bus.entry_size` counts them). An entry with no ``EventGroupId`` counts
      toward the bus only.

    Both are checked as the engine's served endpoint checks them (:class:`OneSecondWindows`, the second ending at
    the request). What a publisher sees past a limit is not documented; as the engine, the model refuses the
    whole request (a request-level ``ThrottlingException``, SPEC A.8), and the producer tries it again after its
    backoffs (:func:`retried_at`, the SDKs' standard retry mode, as on Classic), accepted at the first try that
    fits, refused (the producer gives up) when none does. The account's publish throttling budget, which
    PutEvents and PutRawEvents share, has no documented size: not modelled.

    **Delivery** to a subscriber's target has no documented rate limit on this bus (its quotas list none, unlike
    Classic's invocation quota): :meth:`invoke` is at once, and the event takes the profile's delivery latency.
    Its subscribers' retries, maximum event age and FIFO order per group are the engine's
    (:mod:`yafdp.custom_event_bus`), which the local Custom Event Bus runs on this model's times, and the replay's
    (:class:`yafdp.simulation.replay._CustomBusChoreography`), which applies the same rules to recorded sagas.

    ``rng`` draws the producers' backoffs, only when a request is throttled.

    Examples
    --------
    >>> from yafdp.simulation.profiles import load_profile
    >>> from yafdp.simulation.quotas import load_quotas
    >>> bus = CustomEventBus(load_quotas(), load_profile().hops["eventbridge_delivery"], random.Random(1))
    >>> order = {"ord-1": (1, 512)}  # one event of 512 bytes in group ord-1: 1.5 events + KB
    >>> [bus.put_events(0.0, 1, order) for _ in range(1000)][-1], bus.put_events(0.0, 1, order) is None
    (0.0, True)
    >>> bus.put_events(0.0, 1, {"ord-2": (1, 512)}), bus.report()["put_events_refused"]
    (0.0, 1)
    """

    name = "EventBridge Custom Event Bus"

    def __init__(self, quotas: Quotas, delivery: Distribution, rng: random.Random):
        self.delivery = delivery
        self._bus = OneSecondWindows(quotas.custom_event_bus_events_per_second)
        self._group_limit = quotas.custom_event_bus_group_events_plus_kb_per_second
        # Each event group's window: those that took something since the bus's newest second was ``_rotated``, and
        # those that took something in the rotation before (every order is a group here: see _take)
        self._groups: dict[str, OneSecondWindows] = {}
        self._earlier: dict[str, OneSecondWindows] = {}
        self._rotated = -math.inf
        self._rng = rng
        self.put_events_throttled = self.put_events_refused = 0
        self.put_events_throttle_delay = 0.0

    def put_events(self, at: float, entries: int, groups: Mapping[str, tuple[int, int]] | None = None) -> float | None:
        # each group's window, and what the request counts toward it: its entries and their KB. (The lookups, the
        # first test of OneSecondWindows.fits and the takes are made here, inline: the replay publishes a million times
        # a minute.)
        known, bus = self._groups, self._bus
        fits = bus._kept + entries <= bus.limit
        if groups:
            windows = [(known.get(g) or self._window(g), count + size / 1024) for g, (count, size) in groups.items()]
            for window, weight in windows:
                if window._kept + weight > window.limit:
                    fits = False
        else:
            windows = ()
        if not fits and not self._fits(at, entries, windows):  # throttled: the producer tries again after its backoffs
            self.put_events_throttled += 1
            for tried in retried_at(at, self._rng):
                if self._fits(tried, entries, windows):
                    break
            else:
                self.put_events_refused += 1
                return None
            self.put_events_throttle_delay += tried - at
            at = tried
        bus.take(at, entries)
        for window, weight in windows:
            window.take(at, weight)
        # Forget the groups that took nothing since the rotation before last: the newest second any took something
        # in is more than KEPT_SECONDS before the bus's, so a window would hold none of it.
        newest = bus._newest
        if newest - self._rotated > OneSecondWindows.KEPT_SECONDS:
            self._earlier, self._groups, self._rotated = self._groups, {}, newest
        return at

    def _fits(self, t: float, entries: int, windows: Sequence[tuple[OneSecondWindows, float]]) -> bool:
        if not self._bus.fits(t, entries):
            return False
        for window, weight in windows:
            if not window.fits(t, weight):
                return False
        return True

    def _window(self, group: str) -> OneSecondWindows:
        """``group``'s window (an empty one when it took nothing lately)."""
        window = self._groups.get(group)
        if window is None:
            window = self._earlier.pop(group, None)
            if window is None:
                window = OneSecondWindows(self._group_limit, few=True)
            self._groups[group] = window
        return window

    def group_never_throttled(self, most: float) -> bool:
        """Whether an event group that takes at most ``most`` (events + KB, every request of it together) is never
        throttled by its limit: a group's window refuses nothing while all it took leaves room
        (:meth:`OneSecondWindows.fits`), so a caller that knows this (the replay knows every event of an order's saga)
        may leave such a group out of ``groups`` and have the same answers, without the window's bookkeeping."""
        return most + GROUP_TOTAL_MARGIN <= self._group_limit

    def invoke(self, at: float, retry_policy) -> float:
        return at

    def report(self) -> dict:
        return {"put_events_throttled": self.put_events_throttled,
                "put_events_throttle_delay_s": round(self.put_events_throttle_delay, 3),
                "put_events_refused": self.put_events_refused, **NO_INVOCATION_LIMIT}


def delivery_of(kind: str, profile) -> Distribution:
    """The latency from a bus of ``kind`` (``"classic"`` or ``"custom"``) invoking a target to the event being there,
    from ``profile`` (a :class:`~yafdp.simulation.profiles.LatencyProfile`): ``eventbridge_delivery``, or for the
    Custom Event Bus ``custom_event_bus_delivery``. AWS publishes no Custom Event Bus latency: that hop is the
    profile's labelled assumption, and a profile without it falls back to Classic's figure."""
    hops = profile.hops
    if kind == "custom":
        return hops.get("custom_event_bus_delivery", hops["eventbridge_delivery"])
    return hops["eventbridge_delivery"]


def event_bus_for(kind: str, profile, quotas: Quotas, rng: random.Random) -> EventBusModel:
    """The model of a bus of ``kind``: ``"classic"`` (:class:`ClassicEventBus`, the account's PutEvents and
    invocation quotas) or ``"custom"`` (:class:`CustomEventBus`, its limits per event group and per bus), at
    ``quotas``, with the delivery latency of ``profile`` (:func:`delivery_of`); ``rng`` draws the producers'
    backoffs. Raises ValueError for another kind.

    Examples
    --------
    >>> from yafdp.simulation.profiles import load_profile
    >>> from yafdp.simulation.quotas import load_quotas
    >>> event_bus_for("custom", load_profile(), load_quotas(), random.Random(1)).name
    'EventBridge Custom Event Bus'
    """
    models = {"classic": ClassicEventBus, "custom": CustomEventBus}
    if kind not in models:
        raise ValueError(f"no model of a bus of kind {kind!r} (classic or custom)")
    return models[kind](quotas, delivery_of(kind, profile), rng)


# What a bus with no invocation quota reports of its invocations, and what a run with no bus reports of a bus.
NO_INVOCATION_LIMIT = {"invocations_throttled": 0, "invocations_throttle_delay_s": 0.0, "invocations_expired": 0}
NO_BUS = {"put_events_throttled": 0, "put_events_throttle_delay_s": 0.0, "put_events_refused": 0, **NO_INVOCATION_LIMIT}
