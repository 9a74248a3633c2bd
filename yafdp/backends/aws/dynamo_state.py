"""A service's own DynamoDB table: its state as handlers read it, and one transaction per handler call.

Items are keyed ``(pk, sk)``: state is ``(kind, key)`` with the item as JSON text (so numbers keep their
exact JSON form), and three reserved partitions start with ``#``: ``#processed`` (the idempotency markers),
``#outbox`` (events committed but not yet confirmed published) and ``#trace`` (what happened, with
sub-second wall-clock times, for the run database). Keeping all four in the service's own table is what
lets its IAM role touch that table and nothing else.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Iterator

from yafdp.errors import BackendError

PROCESSED = "#processed"
OUTBOX = "#outbox"
TRACE = "#trace"
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for TransactWriteItems
_BATCH = 25  # DynamoDB's limit for BatchWriteItem

KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]


class TooManyWritesError(BackendError):
    """A handler call wrote more items than one DynamoDB transaction can hold."""


def _key(pk: str, sk: str) -> dict:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _trace_item(row: dict) -> dict:
    """A trace row (``kind`` = ``event`` or ``delivery``, plus its columns) as a DynamoDB item."""
    return {**_key(TRACE, f"{row['kind']}#{uuid.uuid4()}"), "row": {"S": json.dumps(row)}}


class DynamoState:
    """One service's table, read like :class:`yafdp.runtime.unit_of_work.ServiceState` and written a transaction at a time.

    (Run in ``tests/integration/test_documented_examples.py``: a delivery commits once.)
    """

    def __init__(self, client, table: str):
        self.client, self.table = client, table

    def get(self, kind: str, key: str) -> dict | None:
        """The item stored under ``(kind, key)``, read consistently (a retry sees what was just committed)."""
        found = self.client.get_item(TableName=self.table, Key=_key(kind, key), ConsistentRead=True).get("Item")
        return json.loads(found["item"]["S"]) if found else None

    def processed(self, marker: str) -> bool:
        """Whether the delivery named ``marker`` (``rule#event_id``) was committed already."""
        return "Item" in self.client.get_item(TableName=self.table, Key=_key(PROCESSED, marker), ConsistentRead=True)

    def commit(self, writes: dict, *, marker: str | None, outbox_key: str, outbox: list[str],
               trace: list[dict]) -> bool:
        """Store a handler call's writes, its processed marker, its outbox and its trace rows atomically.

        ``outbox`` holds the prepared PutEvents entries (JSON text); they stay under ``outbox_key`` until
        :meth:`published` clears them. Returns False when ``marker`` was already there (a duplicate
        delivery that committed first): then nothing was written.
        """
        items = [{"Put": {"TableName": self.table, "Item": {**_key(kind, key), "item": {"S": json.dumps(item)}}}}
                 for (kind, key), item in writes.items()]
        if marker is not None:
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
            reasons = exc.response.get("CancellationReasons", [])
            if marker is not None and any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
                return False
            raise
        return True

    def pending_outbox(self, outbox_key: str) -> list[str]:
        """Entries a call committed but did not confirm published (it crashed in between), oldest first."""
        found = self.client.get_item(TableName=self.table, Key=_key(OUTBOX, outbox_key), ConsistentRead=True).get("Item")
        return json.loads(found["entries"]["S"]) if found else []

    def published(self, outbox_key: str | None, trace: list[dict]) -> None:
        """Record trace rows (e.g. the events just published) and clear the outbox they came from."""
        requests = [{"PutRequest": {"Item": _trace_item(row)}} for row in trace]
        if outbox_key is not None:
            requests.append({"DeleteRequest": {"Key": _key(OUTBOX, outbox_key)}})
        self._batch_write(requests)

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
