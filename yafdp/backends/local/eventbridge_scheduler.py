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

Where AWS's documentation is silent, the emulator chooses, and says so:

* it runs one-time schedules only (``rate()`` and ``cron()`` are refused), in UTC only;
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
from typing import Callable

from yafdp.errors import BackendError, YafdpError
from yafdp.runtime.rundb import MalformedRunError
from yafdp.runtime.scheduling import at_expression  # noqa: F401 - the expression create_schedule parses
from yafdp.runtime.scheduling import scheduled_entries

from yafdp.backends.local.scheduler import Scheduler, Timer

NAME = re.compile(r"^[0-9a-zA-Z\-_.]{1,64}$")  # CreateSchedule's Name (and GroupName): 1 to 64 of these characters
AT = re.compile(r"^at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)$")
ACTIONS_AFTER_COMPLETION = ("NONE", "DELETE")
STATES = ("ENABLED", "DISABLED")


class SchedulerApiError(BackendError):
    """What the Scheduler API answers a request it refuses: ``code`` is AWS's exception name
    (``ValidationException``, ``ConflictException``, ``ResourceNotFoundException``)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"{code}: {message}")


def at_seconds(expression: str) -> float:
    """The epoch seconds (UTC) an ``at(yyyy-mm-ddThh:mm:ss)`` expression names.

    Raises :class:`SchedulerApiError` (``ValidationException``) for any other expression."""
    if not isinstance(expression, str):
        raise SchedulerApiError("ValidationException", f"Invalid Schedule Expression {expression!r}: the local "
                                "EventBridge Scheduler runs one-time schedules, at(yyyy-mm-ddThh:mm:ss), only")
    return _at_seconds(expression)


@lru_cache(maxsize=256)  # a run's deadlines fall on the same seconds, many orders per second (a refusal is not kept)
def _at_seconds(expression: str) -> float:
    match = AT.match(expression)
    if match is None:
        raise SchedulerApiError("ValidationException", f"Invalid Schedule Expression {expression!r}: the local "
                                "EventBridge Scheduler runs one-time schedules, at(yyyy-mm-ddThh:mm:ss), only")
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
    region, account, partition
        for the schedules' ARNs.
    store
        a durable run's database (its open transaction): each schedule is kept in its ``schedules`` table, so
        that :meth:`restore` has them after a kill (None: in memory only, as a memory-store run keeps them).
    check
        ``check(schedule_name, source, detail_type, detail_text)`` raises what the bus would answer the event a
        schedule will put (:meth:`restore` asks it of every kept schedule that has not fired: a table edited since
        is refused before the run goes on, not when the schedule fires); None: not asked.
    """

    def __init__(self, clock: Scheduler, epoch: float, put: Callable[[str, str, str, str], None], *,
                 region: str = "eu-west-1", account: str = "000000000000", partition: str = "aws",
                 store: sqlite3.Connection | None = None, check: Callable[[str, str, str, str], object] | None = None):
        self.clock, self.epoch, self.put, self.store, self.check = clock, epoch, put, store, check
        self.region, self.account, self.partition = region, account, partition
        self.schedules: dict[tuple[str, str], Schedule] = {}
        self.created = self.deleted = self.invoked = 0  # what the run's summary reports

    # ---------------------------------------------------------------- the API, in AWS's member names

    def create_schedule(self, *, Name: str, ScheduleExpression: str, Target: dict, FlexibleTimeWindow: dict,
                        GroupName: str = "default", ActionAfterCompletion: str = "NONE",
                        ScheduleExpressionTimezone: str = "UTC", State: str = "ENABLED") -> dict:
        """Create a one-time schedule; returns ``{"ScheduleArn"}``.

        Raises :class:`SchedulerApiError`: ``ConflictException`` when the group has a schedule of that name,
        ``ValidationException`` for a name, expression, time zone, window, target or state it refuses.
        """
        for what, value in (("Name", Name), ("GroupName", GroupName)):
            if not isinstance(value, str) or not NAME.match(value):
                raise SchedulerApiError("ValidationException", f"{what} {value!r} must be 1 to 64 letters, digits, "
                                                               "'-', '_' or '.'")
        if ScheduleExpressionTimezone != "UTC":
            raise SchedulerApiError("ValidationException", "the local EventBridge Scheduler runs schedules in UTC only")
        due = at_seconds(ScheduleExpression)
        _check_window(FlexibleTimeWindow)
        _check_target(Target)
        if ActionAfterCompletion not in ACTIONS_AFTER_COMPLETION:
            raise SchedulerApiError("ValidationException", f"ActionAfterCompletion must be one of "
                                                           f"{ACTIONS_AFTER_COMPLETION}, got {ActionAfterCompletion!r}")
        if State not in STATES:
            raise SchedulerApiError("ValidationException", f"State must be one of {STATES}, got {State!r}")
        key = (GroupName, Name)
        if key in self.schedules:
            raise SchedulerApiError("ConflictException", f"Schedule {Name} already exists in group {GroupName}.")
        schedule = Schedule(Name, GroupName, ScheduleExpression, dict(Target), dict(FlexibleTimeWindow),
                            ActionAfterCompletion, State, self.schedule_arn(GroupName, Name))
        if State == "ENABLED":
            schedule.timer = self.clock.timer(max(self.clock.vt, due - self.epoch), self._fire, (key,))
        self.schedules[key] = schedule
        self.created += 1
        if self.store is not None:
            request = {"Name": Name, "ScheduleExpression": ScheduleExpression, "Target": Target,
                       "FlexibleTimeWindow": FlexibleTimeWindow, "GroupName": GroupName,
                       "ActionAfterCompletion": ActionAfterCompletion, "State": State}
            self.store.execute("INSERT OR REPLACE INTO schedules (grp, name, request) VALUES (?, ?, ?)",
                               (GroupName, Name, json.dumps(request)))
        return {"ScheduleArn": schedule.arn}

    def restore(self) -> int:
        """Create again the schedules ``store`` kept (a run resumed after a kill), none counted as created again,
        those that fired (``ActionAfterCompletion`` ``NONE``) fired; returns how many.

        Raises :class:`~yafdp.runtime.rundb.MalformedRunError` naming the file and the schedule for a kept request
        this API refuses (the table edited since)."""
        rows = self.store.execute("SELECT grp, name, request, fired FROM schedules ORDER BY rowid").fetchall()
        for group, name, text, fired in rows:
            request = json.loads(text)  # a JSON object: rundb.verify refused the file otherwise
            try:
                if (request.get("GroupName", "default"), request.get("Name")) != (group, name):
                    raise SchedulerApiError("ValidationException", f"it names the schedule "
                                            f"{request.get('GroupName', 'default')}/{request.get('Name')}")
                self.create_schedule(**request)
            except (TypeError, SchedulerApiError) as exc:  # TypeError: a parameter missing or unknown
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
        return {"Name": schedule.name, "GroupName": schedule.group, "Arn": schedule.arn,
                "ScheduleExpression": schedule.expression, "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": schedule.flexible_time_window, "Target": schedule.target,
                "ActionAfterCompletion": schedule.action_after_completion, "State": schedule.state}

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

    def report(self) -> dict:
        """What the run's summary says of the schedules: how many were created, deleted before they fired, and invoked."""
        return {"schedules_created": self.created, "schedules_deleted": self.deleted,
                "schedules_invoked": self.invoked}


def _check_window(window) -> None:
    mode = window.get("Mode") if isinstance(window, dict) else None
    if mode == "OFF":
        return
    if mode == "FLEXIBLE":
        minutes = window.get("MaximumWindowInMinutes")
        if isinstance(minutes, int) and 1 <= minutes <= 1440:
            return
        raise SchedulerApiError("ValidationException", "a FLEXIBLE window needs MaximumWindowInMinutes from 1 to 1440")
    raise SchedulerApiError("ValidationException", f"FlexibleTimeWindow.Mode must be OFF or FLEXIBLE, got {mode!r}")


def _check_target(target) -> None:
    """A target the emulator can run: one that puts the saga's event on the bus (:func:`scheduled_entries`: the
    templated EventBridge PutEvents target, the scheduling service's function, or the universal target
    ``eventbridgev2:putEvents``) with a RoleArn."""
    if not isinstance(target, dict) or not isinstance(target.get("RoleArn"), str):
        raise SchedulerApiError("ValidationException", "Target needs an Arn and a RoleArn")
    try:
        scheduled_entries(target)
    except ValueError as exc:
        raise SchedulerApiError("ValidationException", f"the local EventBridge Scheduler's target: {exc}") from None
