"""A lost update, run: two Loyalty awards to one customer's balance, in two concurrent invocations, on DynamoDB.

A saga gives up isolation (chapter 06): two sagas of one customer run at once, and two Lambda invocations of
Loyalty's function may award points to the same customer at the same moment. A handler that keeps a balance by
reading it (``GetItem``), adding its points and writing it back (``PutItem``) loses one of two such awards when both
read before either writes: the second write replaces the first. :func:`race` makes that interleaving happen on
purpose, with a handshake (a :class:`threading.Barrier` between every invocation's read and its write, never a sleep),
so the outcome does not depend on the machine's speed (:class:`Interleaving`: all read, then each writes in turn), and measures it for each way of keeping the balance:

- ``"read-modify-write"``: ``GetItem``, then ``PutItem`` of the balance read plus the points. Loses an award.
- ``"UpdateItem ADD"``: one ``UpdateItem`` with ``ADD balance :points``, a commutative update DynamoDB applies to the
  stored number: "If the existing attribute is a number, and if Value is also a number, then the Value is
  mathematically added to the existing attribute" and on an item that does not exist yet "DynamoDB uses 0 as the
  initial value" (AttributeValueUpdate, DynamoDB API Reference,
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValueUpdate.html; "Use atomic counter
  operations", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/example_dynamodb_Scenario_AtomicCounterOperations_section.html).
  Nothing to read, nothing lost.
- ``"conditional write"``: optimistic locking. The ``PutItem`` carries a ``ConditionExpression`` that the version is
  still the one read; "If another process modified the item in the meantime, the condition fails and DynamoDB returns
  a ConditionalCheckFailedException" ("Optimistic locking with version number",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/BestPractices_OptimisticLocking.html), and the
  invocation reads again and retries. Nothing lost; one retry per award that lost the race.
- ``"ledger"``: what Loyalty does (:mod:`yafdp.services.loyalty`): every award is its own item, keyed by its order, and
  the balance is their sum, read with ``Query``. Writes never touch each other's items, so none can be lost.

Each invocation stands for one Lambda invocation of Loyalty's function, handling one order's
``Restaurant_Confirmed_Order``: a thread with a boto3 client of its own (Lambda runs concurrent invocations in
separate execution environments, "Understanding Lambda function scaling",
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html). The table is a real DynamoDB table behind
``client`` (moto's in the workbook and the tests, through boto3 and HTTP), keyed like every service table of the plan
(``pk``, ``sk``: :data:`yafdp.plan.model.TABLE_KEY_SCHEMA`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from itertools import combinations
from typing import Callable

from yafdp.plan.model import TABLE_ATTRIBUTES, TABLE_KEY_SCHEMA

STRATEGIES = ("read-modify-write", "UpdateItem ADD", "conditional write", "ledger")
BALANCE, LEDGER = "balance", "ledger"  # the partitions: a customer's balance item, a customer's award items
HANDSHAKE_SECONDS = 300.0  # how long an invocation waits for the others at the handshake before the race is called off


@dataclass
class Award:
    """One invocation's award: ``points`` for ``order_id``; ``conflicts``: its conditional writes DynamoDB refused."""

    order_id: str
    points: int
    conflicts: int = 0


def create_table(client, name: str) -> None:
    """Create the table ``name`` (on-demand, keyed ``pk``/``sk`` as the plan's service tables) and wait until it
    exists."""
    client.create_table(TableName=name, KeySchema=TABLE_KEY_SCHEMA, AttributeDefinitions=TABLE_ATTRIBUTES,
                        BillingMode="PAY_PER_REQUEST")
    client.get_waiter("table_exists").wait(TableName=name)


def _key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def balance(client, table: str, customer_id: str, strategy: str) -> int:
    """The customer's balance in points as ``strategy`` keeps it: the balance item's number, or the sum of the
    ledger's award items (``Query`` on the customer's ledger partition, read consistently)."""
    if strategy == "ledger":
        pages = client.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :customer)", ConsistentRead=True,
            ExpressionAttributeValues={":pk": {"S": LEDGER}, ":customer": {"S": f"{customer_id}#"}})
        return sum(int(item["points"]["N"]) for page in pages for item in page["Items"])
    item = client.get_item(TableName=table, Key=_key(BALANCE, customer_id), ConsistentRead=True).get("Item")
    return int(item["balance"]["N"]) if item else 0


class Interleaving:
    """The handshake that fixes the interleaving of ``n`` invocations: each one reads, then waits until every one has
    read (a :class:`threading.Barrier`), then writes in turn, invocation 1 first (a :class:`threading.Event` per
    invocation, set once its award is written). No sleep: the order is the same on any machine.

    Raises ``threading.BrokenBarrierError`` in the others when one invocation failed (:meth:`abort`), and after
    :data:`HANDSHAKE_SECONDS` when one never arrives."""

    def __init__(self, n: int):
        self.read_all = threading.Barrier(n, timeout=HANDSHAKE_SECONDS)
        self.written = [threading.Event() for _ in range(n)]
        self.log: list[tuple] = []
        self._lock = threading.Lock()

    def before_write(self, n: int) -> None:
        """Invocation ``n`` (0-based) has read: wait for everyone's read, then for invocation ``n - 1``'s write."""
        self.read_all.wait()
        if n and not self.written[n - 1].wait(HANDSHAKE_SECONDS):
            raise threading.BrokenBarrierError(f"invocation {n} never wrote")

    def after_write(self, n: int) -> None:
        """Invocation ``n`` has written its award: the next may write."""
        self.written[n].set()

    def record(self, n: int, call: str, balance: int | None) -> None:
        """One call answered: ``(invocation, call, balance read or written)``, in the order DynamoDB answered."""
        with self._lock:
            self.log.append((f"invocation {n + 1}", call, balance))

    def abort(self) -> None:
        self.read_all.abort()
        for event in self.written:
            event.set()


def award(client, table: str, customer_id: str, mine: Award, strategy: str, turn: Interleaving, n: int) -> None:
    """Award ``mine.points`` to ``customer_id`` as ``strategy`` does, as invocation ``n`` (0-based) of ``turn``: between
    its read and its write it calls ``turn.before_write(n)``, after its write ``turn.after_write(n)`` (a refused
    conditional write reads again and retries, with nobody in between), and records every call with ``turn.record``.

    Raises ``ValueError`` for an unknown strategy, and what boto3 raises for a failed call."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    key = _key(BALANCE, customer_id)
    if strategy == "UpdateItem ADD":  # nothing to read: the handshake only lines the invocations up
        turn.before_write(n)
        answer = client.update_item(TableName=table, Key=key, UpdateExpression="ADD #balance :points",
                                    ExpressionAttributeNames={"#balance": "balance"},
                                    ExpressionAttributeValues={":points": {"N": str(mine.points)}},
                                    ReturnValues="UPDATED_NEW")
        turn.record(n, f"UpdateItem ADD balance {mine.points}", int(answer["Attributes"]["balance"]["N"]))
        turn.after_write(n)
        return
    if strategy == "ledger":
        turn.before_write(n)
        client.put_item(TableName=table, Item={**_key(LEDGER, f"{customer_id}#{mine.order_id}"),
                                               "points": {"N": str(mine.points)}},
                        ConditionExpression="attribute_not_exists(pk)")  # one award per order (the business key)
        turn.record(n, f"PutItem ledger entry {mine.order_id}: {mine.points}", None)
        turn.after_write(n)
        return
    first = True
    while True:
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        seen, version = (int(item["balance"]["N"]), int(item["version"]["N"])) if item else (0, 0)
        turn.record(n, f"GetItem (version {version})", seen)
        if first:
            turn.before_write(n)
            first = False
        new = {**key, "balance": {"N": str(seen + mine.points)}, "version": {"N": str(version + 1)}}
        if strategy == "read-modify-write":
            client.put_item(TableName=table, Item=new)
            turn.record(n, f"PutItem balance {seen} + {mine.points}", seen + mine.points)
            break
        condition = ({"ConditionExpression": "attribute_not_exists(pk)"} if version == 0 else
                     {"ConditionExpression": "#version = :read", "ExpressionAttributeNames": {"#version": "version"},
                      "ExpressionAttributeValues": {":read": {"N": str(version)}}})
        try:
            client.put_item(TableName=table, Item=new, **condition)
        except client.exceptions.ConditionalCheckFailedException:
            mine.conflicts += 1
            turn.record(n, f"PutItem if version {version}: ConditionalCheckFailedException", None)
            continue  # somebody wrote since the read: read again
        turn.record(n, f"PutItem balance {seen} + {mine.points} if version {version}", seen + mine.points)
        break
    turn.after_write(n)


def race(clients: list, table: str, strategy: str, awards: list[Award], customer_id: str = "cus-ada") -> dict:
    """Run one invocation per award at once (a thread each, with its own client from ``clients``), interleaved by an
    :class:`Interleaving` (all read, then each writes in turn), and return what the customer's balance became:
    ``{"strategy", "awards", "expected", "balance", "lost awards", "conflicts", "calls"}`` (points; ``lost awards``:
    the fewest awards whose points the balance is missing; ``conflicts``: conditional writes refused; ``calls``: every
    call, in the order DynamoDB answered).

    Raises ``ValueError`` for an unknown strategy, ``RuntimeError`` when an invocation failed (the others are released
    from the handshake)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    turn = Interleaving(len(awards))
    errors: list[BaseException] = []

    def invoke(client, mine: Award, n: int) -> None:
        try:
            award(client, table, customer_id, mine, strategy, turn, n)
        except BaseException as exc:  # reported by race, not lost in the thread
            errors.append(exc)
            turn.abort()

    threads = [threading.Thread(target=invoke, args=(client, mine, n))
               for n, (client, mine) in enumerate(zip(clients, awards))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{strategy}: an invocation failed: {errors[0]!r}") from errors[0]
    expected = sum(a.points for a in awards)
    got = balance(clients[0], table, customer_id, strategy)
    return {"strategy": strategy, "awards": len(awards), "expected": expected, "balance": got,
            "lost awards": _lost(awards, expected - got), "conflicts": sum(a.conflicts for a in awards),
            "calls": turn.log}


def _lost(awards: list[Award], missing: int) -> int:
    """The fewest awards whose points add up to the ``missing`` points (all of them when none do)."""
    if missing <= 0:
        return 0
    for size in range(1, len(awards) + 1):
        if any(sum(a.points for a in chosen) == missing for chosen in combinations(awards, size)):
            return size
    return len(awards)


def lost_update_table(client_factory: Callable[[], object], table: str, points: tuple[int, ...] = (17, 25),
                      customer_id: str = "cus-ada") -> list[dict]:
    """The race of :func:`race` run once per strategy, each on a customer of its own in ``table`` (created first), with
    one award per entry of ``points`` (two orders of one customer: 17 and 25 points by default). ``client_factory()``
    gives a DynamoDB client (one per invocation). Returns one row per strategy, in :data:`STRATEGIES` order."""
    clients = [client_factory() for _ in points]
    create_table(clients[0], table)
    rows = []
    for n, strategy in enumerate(STRATEGIES):
        awards = [Award(f"ord-race-{i}", p) for i, p in enumerate(points, 1)]
        rows.append(race(clients, table, strategy, awards, customer_id=f"{customer_id}-{n}"))
    return rows
