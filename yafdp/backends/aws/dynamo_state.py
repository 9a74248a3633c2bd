"""A service's own DynamoDB table: its state as handlers read it, and one transaction per handler call.

Items are keyed ``(pk, sk)``: state is ``(kind, key)`` with the item as JSON text (so numbers keep their
exact JSON form) and a ``version`` number, and three reserved partitions start with ``#``: ``#processed`` (the idempotency markers),
``#outbox`` (events committed but not yet confirmed published) and ``#trace`` (what happened, with
sub-second wall-clock times, for the run database). Keeping all four in the service's own table is what
lets its IAM role touch that table and nothing else.

Lambda runs many invocations of one function at once and SQS delivers at least once, so two handler calls
may read the same item and both write it. Concurrency is optimistic: a call reads through a
:class:`Snapshot`, which records the version of every item it read (0: absent), and :meth:`DynamoState.commit`
makes every write conditional on that version, and checks every item read but not written with a
``ConditionCheck``. DynamoDB cancels the whole transaction when a condition fails ("If any action's
condition is not met, the entire TransactWriteItems request fails": TransactWriteItems, DynamoDB API
Reference), so nothing of a call that raced another is written: it raises :class:`ConflictError`, and the
message comes back to be handled again on fresh state.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Iterator

from yafdp.errors import BackendError
from yafdp.plan.model import TABLE_ATTRIBUTES, TABLE_KEY_SCHEMA

PROCESSED = "#processed"
OUTBOX = "#outbox"
TRACE = "#trace"
TASK_OUTPUT = "#task-output"  # what a Step Functions Task answered, kept for a retry of the same Task
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for TransactWriteItems
_BATCH = 25  # DynamoDB's limit for BatchWriteItem

KEY_SCHEMA, ATTRIBUTES = TABLE_KEY_SCHEMA, TABLE_ATTRIBUTES


class TooManyWritesError(BackendError):
    """A handler call wrote more items than one DynamoDB transaction can hold."""


class ConflictError(BackendError):
    """Another call changed (or created) an item this call read, between the read and the commit; nothing
    of this call was written. ``items`` names them as ``kind/key``."""

    def __init__(self, table: str, items: list[str]):
        self.items = items
        super().__init__(f"{table}: {', '.join(items)} changed since this call read them; nothing was written, "
                         "the delivery is retried on fresh state")


# Why DynamoDB cancels an action of a transaction (CancellationReason.Code, TransactWriteItems API Reference):
# a condition that failed, or another transaction on the same item in flight at the same time.
_RACED = {"ConditionalCheckFailed", "TransactionConflict"}


def _key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _trace_item(row: dict) -> dict:
    """A trace row (``kind`` = ``event`` or ``delivery``, plus its columns) as a DynamoDB item."""
    return {**_key(TRACE, f"{row['kind']}#{uuid.uuid4()}"), "row": {"S": json.dumps(row)}}


class Snapshot:
    """The reads of one handler call, as :class:`~yafdp.runtime.unit_of_work.ServiceState`: ``versions`` maps
    every ``(kind, key)`` read to the version seen first (0 when the item was absent), for
    :meth:`DynamoState.commit` to condition the call's writes on. One per call: never shared between threads."""

    __slots__ = ("state", "versions")

    def __init__(self, state: "DynamoState"):
        self.state = state
        self.versions: dict[tuple[str, str], int] = {}

    def get(self, kind: str, key: str) -> dict | None:
        """The item stored under ``(kind, key)``, read consistently; its version is recorded."""
        item, version = self.state.read(kind, key)
        self.versions.setdefault((kind, key), version)
        return item


def _named(action: dict) -> str:
    """``kind/key`` of a transaction action's item."""
    [body] = action.values()
    key = body.get("Key") or body["Item"]
    return f"{key['pk']['S']}/{key['sk']['S']}"


def _unchanged_since(version: int) -> dict:
    """The condition that an item is still as it was read: the same version, or still absent."""
    if version == 0:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": "#version = :read", "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":read": {"N": str(version)}}}


class DynamoState:
    """One service's table, read like :class:`yafdp.runtime.unit_of_work.ServiceState` and written a transaction at a time.

    (Run in ``tests/integration/test_documented_examples.py``: a delivery commits once.)
    """

    def __init__(self, client, table: str):
        self.client, self.table = client, table

    def get(self, kind: str, key: str) -> dict | None:
        """The item stored under ``(kind, key)``, read consistently (a retry sees what was just committed)."""
        return self.read(kind, key)[0]

    def read(self, kind: str, key: str) -> tuple[dict | None, int]:
        """``(item, version)`` under ``(kind, key)``, read consistently; ``(None, 0)`` when absent."""
        found = self.client.get_item(TableName=self.table, Key=_key(kind, key), ConsistentRead=True).get("Item")
        if not found:
            return None, 0
        return json.loads(found["item"]["S"]), int(found.get("version", {}).get("N", "0"))

    def snapshot(self) -> Snapshot:
        """A fresh record of one call's reads (see :class:`Snapshot`)."""
        return Snapshot(self)

    def processed(self, marker: str) -> bool:
        """Whether the delivery named ``marker`` (``rule#event_id``) was committed already."""
        return "Item" in self.client.get_item(TableName=self.table, Key=_key(PROCESSED, marker), ConsistentRead=True)

    def commit(self, writes: dict, *, reads: dict | None = None, marker: str | None, outbox_key: str,
               outbox: list[str], trace: list[dict]) -> bool:
        """Store a handler call's writes, its processed marker, its outbox and its trace rows atomically.

        ``writes`` maps ``(kind, key)`` to the new item; ``reads`` maps ``(kind, key)`` to the version the
        call read (:attr:`Snapshot.versions`). A written item is stored with its version plus one, on
        condition that it still has the version read; an item read and not written is checked the same
        way (``ConditionCheck``). ``outbox`` holds the prepared PutEvents entries (JSON text); they stay
        under ``outbox_key`` until :meth:`published` clears them.

        Returns False when ``marker`` was already there (a duplicate delivery that committed first): then
        nothing was written. Raises :class:`ConflictError` when an item read changed before the commit
        (nothing was written), :class:`TooManyWritesError` past DynamoDB's 100 actions per transaction.
        """
        reads = reads or {}
        items = []
        for (kind, key), item in writes.items():
            # ADD on a missing number starts it from 0 (UpdateItem's ADD action, DynamoDB API Reference).
            update = {"TableName": self.table, "Key": _key(kind, key), "UpdateExpression": "SET #item = :item ADD #version :one",
                      "ExpressionAttributeNames": {"#item": "item", "#version": "version"},
                      "ExpressionAttributeValues": {":item": {"S": json.dumps(item)}, ":one": {"N": "1"}}}
            if (kind, key) in reads:
                condition = _unchanged_since(reads[(kind, key)])
                update["ConditionExpression"] = condition["ConditionExpression"]
                update["ExpressionAttributeValues"].update(condition.get("ExpressionAttributeValues", {}))
            items.append({"Update": update})
        items += [{"ConditionCheck": {"TableName": self.table, "Key": _key(kind, key), **_unchanged_since(version)}}
                  for (kind, key), version in reads.items() if (kind, key) not in writes]
        marker_at = None
        if marker is not None:
            marker_at = len(items)
            items.append({"Put": {"TableName": self.table, "Item": _key(PROCESSED, marker),
                                  "ConditionExpression": "attribute_not_exists(pk)"}})
        if outbox:
            items.append({"Put": {"TableName": self.table,
                                  "Item": {**_key(OUTBOX, outbox_key), "entries": {"S": json.dumps(outbox)}}}})
        items += [{"Put": {"TableName": self.table, "Item": _trace_item(row)}} for row in trace]
        if len(items) > MAX_TRANSACTION_ITEMS:
            raise TooManyWritesError(f"{self.table}: one handler call wrote {len(items)} items; a DynamoDB "
                                     f"transaction holds at most {MAX_TRANSACTION_ITEMS}: write fewer items per event")
        if not items:
            return True
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            codes += [None] * (len(items) - len(codes))
            if marker_at is not None and codes[marker_at] == "ConditionalCheckFailed":
                return False
            raced = [_named(action) for action, code in zip(items, codes) if code in _RACED]
            if raced:
                raise ConflictError(self.table, raced) from None
            raise
        return True

    def pending_outbox(self, outbox_key: str) -> list[str]:
        """Entries a call committed but did not confirm published (it crashed in between), oldest first."""
        found = self.client.get_item(TableName=self.table, Key=_key(OUTBOX, outbox_key), ConsistentRead=True).get("Item")
        return json.loads(found["entries"]["S"]) if found else []

    def published(self, outbox_key: str | None, trace: list[dict]) -> None:
        """Record trace rows (the events just published), then clear the outbox they came from.

        In that order: a crash in between leaves the outbox, so the events go out again (at least once),
        and the trace holds both publications."""
        self._batch_write([{"PutRequest": {"Item": _trace_item(row)}} for row in trace])
        if outbox_key is not None:
            self.clear_outbox(outbox_key)

    def clear_outbox(self, outbox_key: str) -> None:
        """Forget the outbox under ``outbox_key``: its events were published."""
        self._batch_write([{"DeleteRequest": {"Key": _key(OUTBOX, outbox_key)}}])

    def record(self, row: dict) -> None:
        """Record one trace row on its own (a failed or duplicate delivery: nothing else is committed)."""
        self.client.put_item(TableName=self.table, Item=_trace_item(row))

    def _batch_write(self, requests: list[dict]) -> None:
        for start in range(0, len(requests), _BATCH):
            pending = {self.table: requests[start:start + _BATCH]}
            for attempt in range(8):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)  # throttled: back off as the SDKs do
            if pending:
                raise RuntimeError(f"{self.table}: DynamoDB left {len(pending[self.table])} writes unprocessed "
                                   "after 8 tries (throttled?); the message will be retried")


def scan(client, table: str) -> Iterator[tuple[str, str, dict]]:
    """Every item of a service table as ``(pk, sk, attributes)``, read consistently."""
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            yield item["pk"]["S"], item["sk"]["S"], item


def items_of(client, table: str, pk: str) -> Iterator[tuple[str, dict]]:
    """The items of one partition (e.g. ``order``) as ``(sk, item)``."""
    pages = client.get_paginator("query").paginate(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}},
        ConsistentRead=True)
    for page in pages:
        for item in page["Items"]:
            yield item["sk"]["S"], json.loads(item["item"]["S"])
