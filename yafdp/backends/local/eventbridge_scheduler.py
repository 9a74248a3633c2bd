"""Amazon EventBridge Scheduler, emulated on the run's virtual clock: one-time schedules whose target puts an event on
the saga's bus, what the saga's timeout is made of.

A handler asks for a schedule through its unit of work (``uow.schedule(name, after_seconds, detail_type, detail)``,
``uow.cancel_schedule(name)``); once its unit of work commits, the backend turns each request into the API call AWS
has, here :meth:`LocalScheduler.create_schedule` and :meth:`LocalScheduler.delete_schedule`, with AWS's member names:
``ScheduleExpression`` ``at(yyyy-mm-ddThh:mm:ss)`` ("One-time schedules", EventBridge Scheduler user guide,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html), ``FlexibleTimeWindow``,
``ActionAfterCompletion`` ``DELETE`` ("Deleting a schedule after it completes",
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-delete.html) and a ``Target`` that puts the
saga's event on the bus: the Classic bus with ``EventBridgeParameters`` (``DetailType``, ``Source``) and the event's
``Input`` (the templated EventBridge PutEvents target,
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html), or on a Custom Event Bus the
scheduling service's function or the universal target ``eventbridgev2:putEvents``
(:func:`yafdp.runtime.scheduling.scheduled_entries`). When a schedule is due it puts its event on the bus, and the
bus routes it as any other: invoking a function target is emulated by what the function does with it, publishing the
event (:meth:`yafdp.backends.aws.function.ServiceFunction.put_scheduled`).

A request is checked as the Scheduler API checks it: against CreateSchedule's shape in botocore's service model
(:mod:`yafdp.backends.local.scheduler_requests`: member names, types, required members, the documented lengths,
ranges, enums and patterns, https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html), a
refusal being a ``ValidationException`` that names the member. What the emulator simplifies it refuses, with
:class:`UnsupportedLocally` naming the member, rather than run it some other way:

* it runs one-time schedules only (``rate()`` and ``cron()`` are refused), in UTC only;
* its targets put the saga's event on the saga's bus: that bus (an ARN of another bus is refused), one of the
  services' functions publishing its own service's event, or ``eventbridgev2:putEvents`` on that bus, each with an
  ``Input``; no other kind of target, and no ``RetryPolicy`` or ``DeadLetterConfig`` (an invocation here does not
  fail and is not retried);
* no ``KmsKeyArn`` (nothing is encrypted) and no ``ClientToken`` (no idempotent replay of a request).

``Description`` is kept and described by :meth:`LocalScheduler.get_schedule`; ``StartDate`` and ``EndDate`` are
kept in the request ``run.db`` holds and, as AWS does for a one-time schedule, ignored ("EventBridge Scheduler
ignores StartDate for one-time schedules", API_CreateSchedule).

Where AWS's documentation is silent, the emulator chooses, and says so:

* a ``FlexibleTimeWindow`` ``OFF`` with a ``MaximumWindowInMinutes`` is taken, the window unused;
* a schedule fires exactly at its time (AWS gives no bound on how late it may invoke); a ``FLEXIBLE`` window fires
  at its start, the earliest time the window allows;
* a schedule whose time has passed when it is created fires at once;
* a schedule that fired and has ``ActionAfterCompletion`` ``NONE`` stays, ``State`` ``ENABLED``, with nothing left to
  invoke.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Callable, Mapping

from yafdp.errors import BackendError, YafdpError
from yafdp.quoting import excerpt
from yafdp.runtime.json_text import loads
from yafdp.runtime.rundb import MalformedRunError
from yafdp.runtime.scheduling import at_expression  # noqa: F401 - the expression create_schedule parses
from yafdp.runtime.scheduling import UNIVERSAL_PUT_EVENTS, scheduled_entries

from yafdp.backends.local.scheduler import Scheduler, Timer

AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$")
# CreateSchedule's members this emulator runs as AWS does (StartDate and EndDate: "EventBridge Scheduler ignores
# StartDate for one-time schedules", and EndDate alike, API_CreateSchedule above); the others, and why not
HONOURED = frozenset({"Name", "GroupName", "ScheduleExpression", "ScheduleExpressionTimezone", "FlexibleTimeWindow",
                      "Target", "ActionAfterCompletion", "State", "Description", "StartDate", "EndDate"})
HONOURED_NOT = {"KmsKeyArn": "it encrypts nothing with a customer managed KMS key",
                "ClientToken": "it does not model a request's idempotency token"}
TARGET_MEMBERS = frozenset({"Arn", "RoleArn", "Input"})  # and EventBridgeParameters on the bus
TARGET_MEMBERS_NOT = {"RetryPolicy": "it does not model a failed invocation and its retries",
                      "DeadLetterConfig": "it does not model a failed invocation and its dead-letter queue",
                      "EventBridgeParameters": "the templated EventBridge PutEvents target's: Target.Arn is no bus"}


class SchedulerApiError(BackendError):
    """What the Scheduler API answers a request it refuses: ``code`` is AWS's exception name
    (``ValidationException``, ``ConflictException``, ``ResourceNotFoundException``)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


class UnsupportedLocally(SchedulerApiError):
    """A request the Scheduler API accepts that the local EventBridge Scheduler cannot run as AWS would (``code``
    ``"UnsupportedLocally"``, no AWS exception): refused, rather than run some other way."""

    def __init__(self, what: str):
        self.code = "UnsupportedLocally"
        BackendError.__init__(self, f"the local EventBridge Scheduler does not support {what}")


def at_seconds(expression: str) -> float:
    """The epoch seconds (UTC) an ``at(yyyy-mm-ddThh:mm:ss)`` expression names.

    Raises :class:`UnsupportedLocally` for a ``rate()`` or ``cron()`` expression (recurring schedules, which AWS
    runs and this emulator does not), :class:`SchedulerApiError` (``ValidationException``) for any other."""
    return _at_seconds(expression)


@lru_cache(maxsize=256)  # a run's deadlines fall on the same seconds, many orders per second (a refusal is not kept)
def _at_seconds(expression: str) -> float:
    match = AT.match(expression)
    if match is None:
        if expression.startswith(("rate(", "cron(")):
            raise UnsupportedLocally(f"the recurring schedule {expression!r} (it runs one-time schedules, "
                                     "at(yyyy-mm-ddThh:mm:ss), only)")
        raise SchedulerApiError("ValidationException", f"Invalid Schedule Expression {expression!r}: expected "
                                "at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields)")
    try:  # the checks ``strptime`` makes, cheaper
        return datetime(*map(int, match.groups()), tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise SchedulerApiError("ValidationException", f"Invalid Schedule Expression {expression!r}: no such date "
                                "or time") from None


@dataclass
class Schedule:
    """One schedule as :meth:`LocalScheduler.get_schedule` describes it, and what became of it."""

    name: str
    group: str
    expression: str
    target: dict
    flexible_time_window: dict
    action_after_completion: str
    state: str
    arn: str
    description: str | None = None
    timer: Timer | None = field(default=None, repr=False)
    fired: bool = False


class LocalScheduler:
    """EventBridge Scheduler over the run's virtual clock (:class:`~yafdp.backends.local.scheduler.Scheduler`).

    Parameters
    ----------
    clock
        the run's scheduler: a schedule is a cancellable timer on it.
    epoch
        the wall-clock date (epoch seconds) the run's virtual clock starts at: ``at()`` times are dates.
    put
        ``put(schedule_name, source, detail_type, detail_text)``: the target's PutEvents, made when a schedule is due.
    bus
        the ARN of the saga's bus, the one bus a schedule's target may put events on.
    functions
        ``{function ARN: source}``: the services' functions a schedule may target, each with the source of the events
        it publishes (none: no function target).
    region, account, partition
        for the schedules' ARNs (``partition`` also for the universal target's).
    store
        a durable run's database (its open transaction): each schedule is kept in its ``schedules`` table, so
        that :meth:`restore` has them after a kill (None: in memory only, as a memory-store run keeps them).
    check
        ``check(schedule_name, source, detail_type, detail_text)`` raises what the bus would answer the event a
        schedule will put (:meth:`restore` asks it of every kept schedule that has not fired: a table edited since
        is refused before the run goes on, not when the schedule fires); None: not asked.
    """

    def __init__(self, clock: Scheduler, epoch: float, put: Callable[[str, str, str, str], None], *, bus: str,
                 functions: Mapping[str, str] | None = None, region: str = "eu-west-1", account: str = "000000000000",
                 partition: str = "aws", store: sqlite3.Connection | None = None,
                 check: Callable[[str, str, str, str], object] | None = None):
        self.clock, self.epoch, self.put, self.store, self.check = clock, epoch, put, store, check
        self.bus, self.functions = bus, dict(functions or {})
        self.region, self.account, self.partition = region, account, partition
        self.schedules: dict[tuple[str, str], Schedule] = {}
        self.created = self.deleted = self.invoked = 0  # what the run's summary reports

    # ---------------------------------------------------------------- the API, in AWS's member names

    def create_schedule(self, **request) -> dict:
        """CreateSchedule: create a one-time schedule; returns ``{"ScheduleArn"}``. ``request`` has AWS's members
        (``Name``, ``ScheduleExpression``, ``Target``, ``FlexibleTimeWindow``, and optionally ``GroupName``
        ``"default"``, ``ActionAfterCompletion`` ``"NONE"``, ``State`` ``"ENABLED"``, ``Description``, ...).

        Raises :class:`SchedulerApiError`: ``ValidationException`` for a request CreateSchedule refuses (its shape in
        botocore's service model: :func:`~yafdp.backends.local.scheduler_requests.request_refusal`, an ``at()`` date
        that does not exist, a ``FLEXIBLE`` window without its length), ``ConflictException`` when the group has a
        schedule of that name; :class:`UnsupportedLocally` for a request CreateSchedule accepts that this emulator
        cannot run as AWS would (the module's docstring lists them).
        """
        from yafdp.backends.local.scheduler_requests import request_refusal  # botocore: only when asked

        refusal = request_refusal("CreateSchedule", request)
        if refusal is not None:
            raise SchedulerApiError("ValidationException", refusal)
        for member in request.keys() - HONOURED:
            raise UnsupportedLocally(f"{member} ({HONOURED_NOT.get(member, 'a member it does not model')})")
        if request.get("ScheduleExpressionTimezone", "UTC") != "UTC":
            raise UnsupportedLocally(f"ScheduleExpressionTimezone {request['ScheduleExpressionTimezone']!r} (it runs "
                                     "schedules in UTC only)")
        window = request["FlexibleTimeWindow"]
        # "If you do set the value to FLEXIBLE, you must then specify a maximum window of time" (user guide,
        # https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-flexible-time-windows.html)
        if window["Mode"] == "FLEXIBLE" and "MaximumWindowInMinutes" not in window:
            raise SchedulerApiError("ValidationException", "a FLEXIBLE window needs MaximumWindowInMinutes")
        at_seconds(request["ScheduleExpression"])
        self._check_target(request["Target"])
        return self.add_schedule(request)

    def add_schedule(self, request: dict) -> dict:
        """Create the schedule of a CreateSchedule ``request`` made by the saga itself
        (:class:`~yafdp.runtime.scheduling.ScheduleCalls`), not checked again as :meth:`create_schedule` checks one:
        its shape is CreateSchedule's and what this emulator runs (tests/unit/test_eventbridge_scheduler.py proves it
        of every kind of target the saga makes) and its one member a handler chooses, the schedule's name, was
        checked when the handler asked (:data:`~yafdp.runtime.scheduling.SCHEDULE_NAME`). The check costs some
        13 us a request, 2% of a 100,000-order run's CPU, and imports botocore (0.1 s of CPU) into every run.
        Returns ``{"ScheduleArn"}``; raises :class:`SchedulerApiError` ``ConflictException`` when the group has a
        schedule of that name."""
        name, group = request["Name"], request.get("GroupName", "default")
        due = at_seconds(request["ScheduleExpression"])
        target, window = request["Target"], request["FlexibleTimeWindow"]
        key = (group, name)
        if key in self.schedules:
            raise SchedulerApiError("ConflictException", f"Schedule {name} already exists in group {group}.")
        action, state = request.get("ActionAfterCompletion", "NONE"), request.get("State", "ENABLED")
        schedule = Schedule(name, group, request["ScheduleExpression"], dict(target), dict(window), action, state,
                            self.schedule_arn(group, name), request.get("Description"))
        if state == "ENABLED":
            schedule.timer = self.clock.timer(max(self.clock.vt, due - self.epoch), self._fire, (key,))
        self.schedules[key] = schedule
        self.created += 1
        if self.store is not None:
            kept = {**request, "GroupName": group, "ActionAfterCompletion": action, "State": state}
            self.store.execute("INSERT OR REPLACE INTO schedules (grp, name, request) VALUES (?, ?, ?)",
                               (group, name, json.dumps(kept, default=str)))
        return {"ScheduleArn": schedule.arn}

    def restore(self) -> int:
        """Create again the schedules ``store`` kept (a run resumed after a kill), none counted as created again,
        those that fired (``ActionAfterCompletion`` ``NONE``) fired; returns how many.

        Raises :class:`~yafdp.runtime.rundb.MalformedRunError` naming the file and the schedule for a kept request
        this API refuses, or this emulator does not support, or whose event the bus would refuse (the table edited
        since)."""
        rows = self.store.execute("SELECT grp, name, request, fired FROM schedules ORDER BY rowid").fetchall()
        for group, name, text, fired in rows:
            request = json.loads(text)  # a JSON object: rundb.verify refused the file otherwise
            named = (request.get("GroupName", "default"), request.get("Name"))
            if named != (group, name):  # the row's grp and name columns, or the request, edited
                raise self._malformed(group, name, f"a request for another schedule: its GroupName and Name are "
                                                   f"{excerpt(named[0])} and {excerpt(named[1])}, not the row's")
            try:
                self.create_schedule(**request)
            except UnsupportedLocally as exc:
                raise self._malformed(group, name, f"a request CreateSchedule accepts but {exc}") from None
            except SchedulerApiError as exc:
                raise self._malformed(group, name, f"a request the Scheduler API refuses ({exc})") from None
            schedule = self.schedules[(group, name)]
            if not fired and self.check is not None:  # what it will put, as the bus will take it (the table edited)
                try:
                    for entry in scheduled_entries(schedule.target):
                        self.check(name, *entry)
                except (ValueError, YafdpError) as exc:  # check's DeliveryError; scheduled_entries' ValueError
                    raise self._malformed(group, name, f"an event the bus would refuse when it fires ({exc})") from None
            if fired:
                if schedule.timer is not None:
                    schedule.timer.cancel()
                schedule.fired, schedule.timer = True, None
                self.store.execute("UPDATE schedules SET fired = 1 WHERE grp = ? AND name = ?", (group, name))
        self.created -= len(rows)
        return len(rows)

    def _malformed(self, group: str, name: str, holds: str) -> MalformedRunError:
        """The error of a kept schedule that cannot be restored, naming the run's database file and the schedule."""
        where = self.store.execute("PRAGMA database_list").fetchone()[2] or "the run's database"
        return MalformedRunError(f"{where}: the schedule {group}/{name} holds {holds}")

    def _forget(self, key: tuple[str, str]) -> None:
        if self.store is not None:
            self.store.execute("DELETE FROM schedules WHERE grp = ? AND name = ?", key)

    def delete_schedule(self, *, Name: str, GroupName: str = "default") -> dict:
        """Delete a schedule: it will not fire. Raises :class:`SchedulerApiError` (``ResourceNotFoundException``)
        when there is none of that name in the group (one that fired with ``ActionAfterCompletion`` ``DELETE``
        included)."""
        schedule = self.schedules.pop((GroupName, Name), None)
        if schedule is None:
            raise SchedulerApiError("ResourceNotFoundException", f"Schedule {Name} does not exist.")
        if schedule.timer is not None:
            schedule.timer.cancel()
        self.deleted += 1
        self._forget((GroupName, Name))
        return {}

    def get_schedule(self, *, Name: str, GroupName: str = "default") -> dict:
        """The schedule as GetSchedule describes it. Raises ``ResourceNotFoundException`` for an unknown one."""
        schedule = self.schedules.get((GroupName, Name))
        if schedule is None:
            raise SchedulerApiError("ResourceNotFoundException", f"Schedule {Name} does not exist.")
        described = {"Name": schedule.name, "GroupName": schedule.group, "Arn": schedule.arn,
                     "ScheduleExpression": schedule.expression, "ScheduleExpressionTimezone": "UTC",
                     "FlexibleTimeWindow": schedule.flexible_time_window, "Target": schedule.target,
                     "ActionAfterCompletion": schedule.action_after_completion, "State": schedule.state}
        if schedule.description is not None:
            described["Description"] = schedule.description
        return described

    def list_schedules(self, *, GroupName: str | None = None) -> dict:
        """``{"Schedules": [{"Name", "GroupName", "Arn", "State"}]}`` of a group, or of every group."""
        return {"Schedules": [{"Name": s.name, "GroupName": s.group, "Arn": s.arn, "State": s.state}
                              for (group, _), s in sorted(self.schedules.items())
                              if GroupName is None or group == GroupName]}

    def schedule_arn(self, group: str, name: str) -> str:
        return f"arn:{self.partition}:scheduler:{self.region}:{self.account}:schedule/{group}/{name}"

    # ---------------------------------------------------------------- firing

    def _fire(self, key: tuple[str, str]) -> None:
        schedule = self.schedules.get(key)
        if schedule is None or schedule.fired:
            return
        schedule.fired, schedule.timer = True, None
        self.invoked += 1
        if schedule.action_after_completion == "DELETE":
            del self.schedules[key]
            self._forget(key)
        elif self.store is not None:
            self.store.execute("UPDATE schedules SET fired = 1 WHERE grp = ? AND name = ?", key)
        for source, detail_type, text in scheduled_entries(schedule.target):
            self.put(schedule.name, source, detail_type, text)

    def _check_target(self, target: dict) -> None:
        """Refuse (:class:`UnsupportedLocally`) a ``Target`` this emulator cannot run as AWS would: one that does not
        put the saga's event on the saga's bus (``bus``): that bus itself (the templated EventBridge PutEvents target,
        with its ``EventBridgeParameters``), one of the services' functions (``functions``) publishing its own
        service's event, or the universal target ``eventbridgev2:putEvents`` putting on that bus; or a member it does
        not model. (Its shape is CreateSchedule's, checked before.)"""
        arn = target["Arn"]
        on_bus = ":event-bus/" in arn or ":event-busv2/" in arn
        universal = UNIVERSAL_PUT_EVENTS.format(partition=self.partition)
        if on_bus and arn != self.bus:
            raise UnsupportedLocally(f"Target.Arn {arn} (another event bus: it puts events on the saga's bus "
                                     f"{self.bus} only)")
        if not on_bus and arn != universal and arn not in self.functions:
            raise UnsupportedLocally(f"Target.Arn {arn} (it runs only targets that put the saga's event on its bus: "
                                     f"the bus {self.bus}, a service's function, or {universal})")
        for member in target.keys() - TARGET_MEMBERS - ({"EventBridgeParameters"} if on_bus else set()):
            why = TARGET_MEMBERS_NOT.get(member, "a parameter of a kind of target it does not run")
            raise UnsupportedLocally(f"Target.{member} ({why})")
        if "Input" not in target:
            raise UnsupportedLocally("a Target without Input (AWS then delivers a default notification, which it "
                                     "does not model)")
        try:
            entries = scheduled_entries(target)
        except ValueError as exc:
            raise UnsupportedLocally(f"Target.Input ({exc})") from None
        named = loads(target["Input"])["EventBusArn"] if arn == universal else self.bus
        if named != self.bus:
            raise UnsupportedLocally(f"Target.Input's EventBusArn {named} (it puts events on the saga's bus {self.bus} "
                                     "only)")
        if arn in self.functions and entries[0][0] != self.functions[arn]:
            raise UnsupportedLocally(f"Target.Input's Source {entries[0][0]!r} for the function {arn} (that function "
                                     f"publishes {self.functions[arn]!r} only: on AWS its invocation would fail, which "
                                     "it does not model)")

    def report(self) -> dict:
        """What the run's summary says of the schedules: how many were created, deleted before they fired, and invoked."""
        return {"schedules_created": self.created, "schedules_deleted": self.deleted,
                "schedules_invoked": self.invoked}
