"""The run database (``run.db``): the bus's archive, queue, trace and dead letters, and every service's state.

One SQLite database holds it all, so a handler's state change, the record that its delivery was processed,
the events it published and the deliveries those events cause are committed in one transaction: a run
killed at any moment loses nothing and repeats nothing. The ``file`` store writes ``run.db`` durably as it
goes (and can be resumed); the ``memory`` store keeps a private temporary database that SQLite holds in
memory, makes nothing durable (fast, not crash-safe) and writes ``run.db`` when the run ends.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    order_id TEXT,
    detail_type TEXT NOT NULL,
    source TEXT NOT NULL,
    published_at REAL NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL,
    replay_name TEXT
);
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    delivered_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'duplicate', 'dead_lettered')),
    error TEXT
);
-- A delivery that ended 'ok' is the record that it was processed (the idempotency key of rule and event).
CREATE UNIQUE INDEX IF NOT EXISTS processed ON deliveries (event_id, rule) WHERE outcome = 'ok';
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    due REAL NOT NULL,
    published REAL NOT NULL,
    fault TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    rule_arn TEXT NOT NULL,
    target_arn TEXT NOT NULL,
    error_code TEXT NOT NULL,
    error_message TEXT NOT NULL,
    exhausted_retry_condition TEXT NOT NULL,
    retry_attempts INTEGER NOT NULL,
    dead_lettered_at REAL NOT NULL,
    redriven_at REAL
);
CREATE TABLE IF NOT EXISTS refusals (
    order_id TEXT,
    field TEXT NOT NULL,
    problem TEXT NOT NULL,
    refused_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (service, kind, key)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS orders AS
    SELECT key AS order_id, json_extract(item, '$.status') AS status, json_extract(item, '$.amount') AS amount,
           json_extract(item, '$.customer_id') AS customer_id, json_extract(item, '$.restaurant_id') AS restaurant_id,
           json_extract(item, '$.placed_at') AS placed_at
    FROM state WHERE service = 'order' AND kind = 'order';
CREATE VIEW IF NOT EXISTS payments AS
    SELECT key AS order_id, kind, json_extract(item, '$.amount') AS amount, json_extract(item, '$.customer_id') AS customer_id
    FROM state WHERE service = 'payment' AND kind IN ('charge', 'refund');
CREATE VIEW IF NOT EXISTS loyalty AS
    SELECT json_extract(item, '$.order_id') AS order_id, json_extract(item, '$.points') AS points, json_extract(item, '$.customer_id') AS customer_id
    FROM state WHERE service = 'loyalty' AND kind = 'entry';
CREATE VIEW IF NOT EXISTS notifications AS
    SELECT json_extract(item, '$.order_id') AS order_id, json_extract(item, '$.detail_type') AS detail_type, json_extract(item, '$.text') AS text
    FROM state WHERE service = 'notification' AND kind = 'message';
"""


def connect(path: str | Path | None) -> sqlite3.Connection:
    """Open (or create) a run database with its schema.

    ``path=None`` gives the memory store's database: a private temporary one that SQLite keeps in memory
    and only spills to an anonymous temporary file when it outgrows its cache (so a long run does not hold
    its whole trace in RAM), with nothing made durable. ``":memory:"`` keeps all of it in RAM. A file path
    gives a durable database in WAL mode.
    """
    db = sqlite3.connect("" if path is None else str(path), isolation_level=None, check_same_thread=False)
    if path is None:
        db.execute("PRAGMA journal_mode = MEMORY")
        db.execute("PRAGMA synchronous = OFF")
    elif str(path) != ":memory:":
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a crash of the process never loses a commit; only a power cut could.
        db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    return db


def open_run(path: str | Path) -> sqlite3.Connection:
    """Open a finished or running run's database read-only: a run folder or its ``run.db``."""
    path = Path(path)
    db_path = path / "run.db" if path.is_dir() else path
    if not db_path.exists():
        raise FileNotFoundError(f"no run database at {db_path} (run `yafdp run --out {path}` first)")
    return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)


def save_copy(db: sqlite3.Connection, path: str | Path) -> None:
    """Write the whole database to ``path`` (replacing it), e.g. an in-memory run to ``run.db``."""
    path = Path(path)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    target = sqlite3.connect(str(path))
    with target:
        db.backup(target)
    target.close()


def set_info(db: sqlite3.Connection, **values) -> None:
    db.executemany("INSERT OR REPLACE INTO run_info (key, value) VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in values.items()])


def get_info(db: sqlite3.Connection) -> dict:
    return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM run_info")}


class ServiceState:
    """One service's items in the run database: what :class:`~yafdp.unit_of_work.UnitOfWork` reads.

    Items are shared, not copied: handlers treat them as read-only and ``put`` new dicts.
    """

    __slots__ = ("writer", "service")

    def __init__(self, writer: "RunWriter", service: str):
        self.writer, self.service = writer, service

    def get(self, kind: str, key: str) -> dict | None:
        return self.writer.get_state(self.service, kind, key)


_INSERT_EVENT = ("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time, replay_name)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_DELIVERY = ("INSERT INTO deliveries (event_id, rule, target, attempt, delivered_at, finished_at, outcome, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_DEAD_LETTER = ("INSERT INTO dead_letters (event_id, rule, target, rule_arn, target_arn, error_code, error_message,"
                       " exhausted_retry_condition, retry_attempts, dead_lettered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPSERT_STATE = "INSERT OR REPLACE INTO state (service, kind, key, item) VALUES (?, ?, ?, ?)"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class RunWriter:
    """The bus's writes to the run database, buffered and flushed in the open transaction just before it commits.

    Within a transaction the buffer *is* the newest state: reads look here first (a saga touches the same
    order's items again and again within moments, so most reads never reach SQLite), and a queued delivery
    that finishes before the flush never touches the ``pending`` table at all. Crash safety is unchanged: the
    buffer is flushed inside the transaction it belongs to, so a crash loses both together.
    """

    def __init__(self, db: sqlite3.Connection, durable: bool):
        self.db, self.durable = db, durable
        # Items written in the open transaction, and the keys of every item that exists: most reads ask about
        # an item the saga just wrote or one that does not exist yet, and neither needs SQLite.
        self.state: dict[tuple[str, str, str], dict] = {}
        self.dirty: set[tuple[str, str, str]] = set()
        self.known: set[tuple[str, str, str]] = set(db.execute("SELECT service, kind, key FROM state"))
        self.processed: set[tuple[str, str]] = set()
        self.writes = 0  # items handlers wrote, for the cost model's database writes
        self.events: dict[str, tuple] = {}
        self.deliveries: list[tuple] = []
        self.dead_letters: list[tuple] = []
        self.pending_new: dict[int, list] = {}
        self.pending_changed: dict[int, tuple] = {}
        self.pending_done: set[int] = set()
        self.next_pending = (db.execute("SELECT COALESCE(MAX(id), 0) FROM pending").fetchone()[0]) if durable else 0

    def get_state(self, service: str, kind: str, key: str) -> dict | None:
        where = (service, kind, key)
        item = self.state.get(where)
        if item is not None or where not in self.known:
            return item
        row = self.db.execute("SELECT item FROM state WHERE service = ? AND kind = ? AND key = ?",
                              (service, kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def put_state(self, service: str, writes: dict) -> None:
        self.writes += len(writes)
        for (kind, key), item in writes.items():
            where = (service, kind, key)
            self.state[where] = item
            self.dirty.add(where)
            self.known.add(where)

    def is_processed(self, rule: str, event_id: str) -> bool:
        if (rule, event_id) in self.processed:
            return True
        return self.db.execute("SELECT 1 FROM deliveries WHERE event_id = ? AND rule = ? AND outcome = 'ok'",
                               (event_id, rule)).fetchone() is not None

    def add_event(self, row: tuple) -> None:
        self.events[row[0]] = row

    def event(self, event_id: str) -> tuple | None:
        """``(source, detail_type, detail_json, published_at)`` of an event, buffered or stored."""
        row = self.events.get(event_id)
        if row is not None:
            return row[3], row[2], row[5], row[4]
        return self.db.execute("SELECT source, detail_type, detail, published_at FROM events WHERE event_id = ?",
                               (event_id,)).fetchone()

    def add_pending(self, event_id: str, rule: str, attempt: int, due: float, published: float, fault: str) -> int:
        self.next_pending += 1
        if self.durable:
            self.pending_new[self.next_pending] = [event_id, rule, attempt, due, published, fault]
        return self.next_pending

    def retry_pending(self, pending_id: int, attempt: int, due: float) -> None:
        if not self.durable:
            return
        new = self.pending_new.get(pending_id)
        if new is not None:
            new[2], new[3] = attempt, due
        else:
            self.pending_changed[pending_id] = (attempt, due)

    def remove_pending(self, pending_id: int) -> None:
        if self.durable and self.pending_new.pop(pending_id, None) is None:
            self.pending_changed.pop(pending_id, None)
            self.pending_done.add(pending_id)

    def flush(self) -> None:
        """Write everything buffered into the open transaction (call just before COMMIT)."""
        db = self.db
        if self.dirty:
            state = self.state
            db.executemany(_UPSERT_STATE, [(*where, _dumps(state[where])) for where in self.dirty])
            self.dirty.clear()
            state.clear()
        self.processed.clear()  # their 'ok' deliveries, flushed below, are the durable record
        if self.events:
            db.executemany(_INSERT_EVENT, self.events.values())
            self.events.clear()
        if self.deliveries:
            db.executemany(_INSERT_DELIVERY, self.deliveries)
            self.deliveries.clear()
        if self.dead_letters:
            db.executemany(_INSERT_DEAD_LETTER, self.dead_letters)
            self.dead_letters.clear()
        if self.pending_new:
            db.executemany("INSERT INTO pending (id, event_id, rule, attempt, due, published, fault) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(i, *row) for i, row in self.pending_new.items()])
            self.pending_new.clear()
        if self.pending_changed:
            db.executemany("UPDATE pending SET attempt = ?, due = ? WHERE id = ?",
                           [(a, d, i) for i, (a, d) in self.pending_changed.items()])
            self.pending_changed.clear()
        if self.pending_done:
            db.executemany("DELETE FROM pending WHERE id = ?", [(i,) for i in self.pending_done])
            self.pending_done.clear()
