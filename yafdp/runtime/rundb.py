"""The run database (``run.db``) every backend writes: its schema, the statements that fill it, and opening it.

One SQLite database holds a run: the bus's archive, queue, trace and dead letters, and every service's state,
so on the local bus a handler's state change, the record that its delivery was processed, the events it
published and the deliveries those events cause are committed in one transaction. The ``file`` store writes
``run.db`` durably as it goes (and can be resumed); the ``memory`` store keeps a private temporary database
that SQLite holds in memory and writes ``run.db`` when the run ends; the AWS backends export into it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

from yafdp.errors import RunFolderError
from yafdp.quoting import excerpt
from yafdp.reading import MAX_JSON_DEPTH, json_depth

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    order_id TEXT,  -- the saga it belongs to: its detail's saga id field (the catalog's saga.id; YAFDP: order_id)
    detail_type TEXT NOT NULL,
    source TEXT NOT NULL,
    published_at REAL NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL,
    replay_name TEXT,
    -- Which unit of work published it (rule#event of a delivery, or an API call's outbox): an outbox that
    -- was published again after a crash announces the same facts again, under the same key.
    published_by TEXT,
    -- On a Custom Event Bus (run_info.bus = 'custom'), NULL on the Classic bus: the event's SystemMetadata
    -- (EventGroupId, DeduplicationId, aws:SequenceNumber) and when the bus ingested it (epoch seconds on the
    -- bus's clock, which the 5-minute deduplication window counts on).
    event_group_id TEXT,
    deduplication_id TEXT,
    sequence_number TEXT,
    ingested_at REAL
);
CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    target TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    delivered_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    -- An OR chain, not IN (...): SQLite evaluates this CHECK on every insert, and IN costs twice as much there.
    outcome TEXT NOT NULL CHECK (outcome = 'ok' OR outcome = 'failed' OR outcome = 'duplicate' OR outcome = 'dead_lettered'),
    error TEXT,
    -- On a Custom Event Bus: aws:DeliveryType, LIVE or REPLAY (read from the bus's retained history); `rule` is
    -- then the subscriber that delivered it. NULL on the Classic bus.
    delivery_type TEXT
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
-- A file-store run's EventBridge Scheduler schedules (its CreateSchedule request, as JSON), kept with the run's data
-- so that a resume has those a kill would lose: removed when deleted, or when fired with ActionAfterCompletion DELETE.
CREATE TABLE IF NOT EXISTS schedules (
    grp TEXT NOT NULL,
    name TEXT NOT NULL,
    request TEXT NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (grp, name)
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
    redriven_at REAL,
    -- 'rule': EventBridge could not deliver to the target (the rule's DLQ, with EventBridge's attributes);
    -- 'queue': the function failed maxReceiveCount receives (the service queue's DLQ, with SQS's attributes);
    -- 'subscriber': a Custom Event Bus subscriber gave up on it (its on-failure queue holds a record that points
    -- to the event, in `body`; `rule` and `rule_arn` are the subscriber's);
    -- 'dropped': no DLQ was there to take it (EventBridge without a DLQ, or Lambda's asynchronous retries).
    kind TEXT NOT NULL DEFAULT 'rule' CHECK (kind IN ('rule', 'queue', 'subscriber', 'dropped')),
    attributes TEXT NOT NULL DEFAULT '{}',  -- JSON: the message attributes that kind of DLQ really carries
    body TEXT  -- the dead-letter message's body when it is not the event itself (a Custom Event Bus record)
);
-- On a Custom Event Bus: every entry PutEvents answered DEDUPLICATED (a copy, published again within 5 minutes,
-- of the event `event_id` that it repeats; nothing was stored or delivered for it).
CREATE TABLE IF NOT EXISTS deduplicated (
    published_at REAL NOT NULL,
    ingested_at REAL NOT NULL,
    event_id TEXT NOT NULL,
    deduplication_id TEXT,
    event_group_id TEXT,
    published_by TEXT
);
CREATE TABLE IF NOT EXISTS refusals (
    order_id TEXT,
    field TEXT NOT NULL,
    problem TEXT NOT NULL,
    refused_at REAL NOT NULL,
    request INTEGER  -- requests.seq of the refused request
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
           json_extract(item, '$.placed_at') AS placed_at, json_extract(item, '$.currency') AS currency
    FROM state WHERE service = 'order' AND kind = 'order';
-- The money ledger: one row per charge and per refund the Payment service made, each its own item keyed by the
-- event that caused it, so a second charge of an order is stored (and seen) like any other.
CREATE VIEW IF NOT EXISTS ledger AS
    SELECT json_extract(item, '$.order_id') AS order_id, json_extract(item, '$.kind') AS kind,
           json_extract(item, '$.amount') AS amount, json_extract(item, '$.currency') AS currency,
           json_extract(item, '$.customer_id') AS customer_id, json_extract(item, '$.reference') AS reference,
           json_extract(item, '$.event_id') AS event_id, json_extract(item, '$.at') AS at
    FROM state WHERE service = 'payment' AND kind = 'ledger';
CREATE VIEW IF NOT EXISTS payments AS
    SELECT order_id, kind, amount, customer_id, currency FROM ledger;
CREATE VIEW IF NOT EXISTS loyalty AS
    SELECT json_extract(item, '$.order_id') AS order_id, json_extract(item, '$.points') AS points, json_extract(item, '$.customer_id') AS customer_id
    FROM state WHERE service = 'loyalty' AND kind = 'entry';
CREATE VIEW IF NOT EXISTS notifications AS
    SELECT json_extract(item, '$.order_id') AS order_id, json_extract(item, '$.detail_type') AS detail_type, json_extract(item, '$.text') AS text
    FROM state WHERE service = 'notification' AND kind = 'message';
-- Every order request of the workload, as the client sends it, stored before the first is sent: a resumed run
-- sends those not sent yet, and `yafdp check` accounts for each (placed, or refused in `refusals`).
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,  -- its place in the workload, from 1
    order_id TEXT,            -- the saga id it names (the catalog's saga.id field), when that is a string
    due REAL NOT NULL,        -- when the client sends it: seconds after the run's start
    request TEXT NOT NULL,    -- the request as JSON
    same_as INTEGER           -- the earlier identical request it was merged with (never sent on its own)
);
CREATE INDEX IF NOT EXISTS requests_by_order ON requests (order_id);
CREATE INDEX IF NOT EXISTS refusals_by_request ON refusals (request);
-- The requests not sent yet (what a resumed run sends): not merged, not refused, and their saga not started (no
-- event names it: the entry point's state and its start event commit together). A request whose saga id an
-- earlier request has is sent to be refused; `first`: that earlier request.
CREATE VIEW IF NOT EXISTS unsent AS
    SELECT q.seq, q.due, q.request, q.first FROM (
        SELECT r.seq, r.due, r.request, r.order_id, r.same_as,
               (SELECT MIN(p.seq) FROM requests p WHERE p.order_id = r.order_id) AS first
        FROM requests r) AS q
    WHERE q.same_as IS NULL AND NOT EXISTS (SELECT 1 FROM refusals f WHERE f.request = q.seq)
      AND (q.first < q.seq OR q.order_id IS NULL OR NOT EXISTS (
           SELECT 1 FROM events e WHERE e.order_id = q.order_id));
"""


def saga_statuses(tracker) -> tuple[str, tuple[str, str]]:
    """A SELECT of every saga's status as its tracker keeps it, ``(saga_id, status)`` rows, and its parameters:
    the ``(kind, saga id)`` items of the tracker service's state (``tracker``: a
    :class:`~yafdp.catalog.saga.Tracker`, whose ``field`` is a plain name)."""
    return (f"SELECT key AS saga_id, json_extract(item, '$.{tracker.field}') AS status FROM state"
            " WHERE service = ? AND kind = ?", (tracker.service, tracker.kind))


def views() -> list[tuple[str, str]]:
    """Every view of the schema as ``(name, SELECT statement)``, in order: what a reader that trusts no view
    stored in a ``run.db`` (``yafdp check``) defines for itself."""
    return re.findall(r"CREATE VIEW IF NOT EXISTS (\w+) AS\s+(.*?);", SCHEMA, flags=re.S)


# The memory store's page size (bytes; a power of two from 512 to 65,536: https://www.sqlite.org/pragma.html#pragma_page_size).
# Its database is a temporary file that each commit writes its changed pages to, one write() a page: at 4,096 bytes
# a page that was 5% of a 20,000-order run's CPU, spent in the kernel (0.52 s of 11.2 s); at 16,384 it was 0.26-0.31 s,
# with the same user time, and the run's peak memory 60 -> 71 MB (on measured time 58 -> 69 MB, against issue 15's
# 73 MiB; 8,192 held it to 61-63 MB, its kernel time not measured apart from the noise; 65,536 saved no more than
# 16,384, and took 119 MB). The run's copy, run.db (save_copy), keeps the page size; what its tables hold is the same.
MEMORY_STORE_PAGE_BYTES = 16_384


def connect(path: str | Path | None, journal: str = "WAL") -> sqlite3.Connection:
    """Open (or create) a run database with its schema.

    ``path=None`` gives the memory store's database: a private temporary one that SQLite keeps in memory
    and only spills to an anonymous temporary file when it outgrows its cache (so a long run does not hold
    its whole trace in RAM), with nothing made durable. ``":memory:"`` keeps all of it in RAM. A file path
    gives a durable database in WAL mode (or in ``journal`` mode, e.g. ``"DELETE"`` for a database that is
    renamed into place once written).
    """
    sqlite3.register_adapter(type(None), _null)  # see _null; registering it again replaces it with itself
    db = sqlite3.connect("" if path is None else str(path), isolation_level=None, check_same_thread=False)
    if path is None:
        db.execute("PRAGMA journal_mode = MEMORY")
        db.execute("PRAGMA synchronous = OFF")
        # Pages of MEMORY_STORE_PAGE_BYTES, not SQLite's 4,096: every commit writes the pages it changed to the
        # temporary file, one system call a page, and a long run commits thousands of times (see the constant).
        db.execute(f"PRAGMA page_size = {MEMORY_STORE_PAGE_BYTES}")
    elif str(path) != ":memory:":
        db.execute(f"PRAGMA journal_mode = {journal}")
        # NORMAL in WAL mode: a crash of the process never loses a commit; only a power cut could.
        db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(SCHEMA)
    return db


def _null(value: None) -> None:
    """The sqlite3 module's adapter for None, which binds it as NULL, as it binds None without one: a value that is
    not an int, float, str or bytearray is "adapted", and with no adapter registered for its type that means
    looking up ``__adapt__`` and ``__conform__`` in vain, each failure an AttributeError raised and cleared
    (several thousand instructions for each NULL a run binds: an event's ``replay_name``, a delivery's ``error``).
    An adapter may return any type SQLite takes, None (NULL) included
    (https://docs.python.org/3/library/sqlite3.html#how-to-adapt-custom-python-types-to-sqlite-values)."""
    return None


# The tables every run's database has (a file without one is not a run, or was written by an older yafdp).
BASE_TABLES = ("run_info", "events", "deliveries", "dead_letters", "refusals", "state", "requests")


class MalformedRunError(RunFolderError):
    """A ``run.db`` that cannot be read as a run: not a database, empty, a table missing, a value that cannot be
    there. Every command that reads a run folder says it the same way: one line naming the file."""


def run_db_path(path: str | Path) -> Path:
    """The ``run.db`` of ``path``: a run folder or the file itself."""
    path = Path(path)
    return path / "run.db" if path.is_dir() else path


def connect_leaving_folder(db_path: Path) -> sqlite3.Connection:
    """A connection to read the database ``db_path`` that leaves its folder as it was: a database in WAL mode read
    on a read-only connection leaves a ``-wal`` and a ``-shm`` behind, so one that has none is opened read-write
    (to read only), and that connection's close removes the ones it made; one that has them (another connection
    open, or a writer killed) is opened read-only, as it is."""
    if any(Path(f"{db_path}{suffix}").exists() for suffix in ("-wal", "-shm")):
        return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    return sqlite3.connect(db_path)


def open_run(path: str | Path) -> sqlite3.Connection:
    """Open a finished or running run's database read-only: a run folder or its ``run.db``. Raises
    :class:`~yafdp.errors.RunFolderError` when there is none, :class:`MalformedRunError` when the file is not a
    run's database (empty, not SQLite, a table missing), so every reader of a run folder refuses it alike."""
    db_path = run_db_path(path)
    if not db_path.is_file():
        folder = db_path.parent if db_path.name == "run.db" else Path(path)  # the folder a run would be written to
        if db_path.is_dir():
            raise RunFolderError(f"{db_path} is a folder, not a run database: remove it (or choose another run "
                                 f"folder); then `yafdp run --out {folder}` can write a run there")
        if db_path.name != "run.db":  # a path that does not exist is named as the folder it would be
            db_path = folder / "run.db"
        gone = "" if folder.is_dir() else f": {folder} does not exist"
        raise RunFolderError(f"no run database at {db_path}{gone} (run `yafdp run --out {folder}` first)")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        verify(db, db_path)
    except BaseException:
        db.close()
        raise
    return db


def verify(db: sqlite3.Connection, db_path: str | Path) -> None:
    """Refuse, as :class:`MalformedRunError` naming ``db_path``, a database that is not a run's: not SQLite, or
    without one of :data:`BASE_TABLES`, or empty, or with a record no run writes (:data:`WELL_FORMED`: an event
    whose detail is not a JSON object or nests deeper than :data:`~yafdp.reading.MAX_JSON_DEPTH`, a state item or
    a request that is not JSON, a time that is not a finite number, an unknown delivery outcome...): one line
    naming the file and the first such record, whichever reader of a run folder asks."""
    if Path(db_path).stat().st_size == 0:
        raise MalformedRunError(f"{db_path}: the file is empty (0 bytes): it holds no run")
    try:
        have = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}
    except sqlite3.DatabaseError as exc:
        raise MalformedRunError(f"{db_path}: not a run database ({exc})") from None
    missing = [t for t in BASE_TABLES if t not in have]
    if missing:
        raise MalformedRunError(f"{db_path}: no table {', '.join(missing)} (not a run database, or written by an "
                                f"older yafdp)")
    try:
        problem = next(filter(None, (_first_malformed(db, table, *record) for table, record in WELL_FORMED.items()
                                     if table in have)), None)  # a table newer than the file, empty
    except sqlite3.DatabaseError as exc:
        raise MalformedRunError(f"{db_path}: not a run database ({exc})") from None
    if problem:
        raise MalformedRunError(f"{db_path}: {problem}")


# What every record of a table must be: {table: (how a record is named, by which SQL expression, [(what must
# hold of it, what it is said to be if not)], its JSON columns)}. A JSON column must also nest no deeper than
# MAX_JSON_DEPTH. An event's detail is "a valid JSON object" (PutEventsRequestEntry,
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsRequestEntry.html).
_NUMBER = "typeof({0}) IN ('integer', 'real') AND abs({0}) < 1e300"  # NaN is stored as NULL, infinity as Inf
_TEXT = "typeof({0}) = 'text'"
_OBJECT = "CASE WHEN json_valid({0}) THEN json_type({0}) = 'object' ELSE 0 END"  # SQL does not short-circuit AND
WELL_FORMED = {
    "run_info": ("run_info {}", "key", [("json_valid(value)", "is not JSON")], ["value"]),
    "events": ("event {}", "event_id", [
        (f"{_TEXT.format('event_id')} AND {_TEXT.format('detail_type')} AND {_TEXT.format('source')}",
         "has no text id, detail-type or source"),
        (_NUMBER.format("published_at"), "has no finite publication time"),
        ("json_valid(detail)", "has a detail that is not JSON"),
        (_OBJECT.format("detail"), "has a detail that is not a JSON object")], ["detail"]),
    "deliveries": ("a delivery of event {}", "event_id", [
        ("outcome IN ('ok', 'failed', 'duplicate', 'dead_lettered')", "has an outcome no delivery has"),
        (f"typeof(attempt) = 'integer' AND {_TEXT.format('rule')} AND {_TEXT.format('target')}",
         "has no whole attempt number, rule or target"),
        (f"{_NUMBER.format('delivered_at')} AND {_NUMBER.format('finished_at')}", "has no finite times")], []),
    "state": ("the {} item", "service || ' service''s ' || kind || ' ' || key",
              [("json_valid(item)", "is not JSON"), (_OBJECT.format("item"), "is not a JSON object")], ["item"]),
    "requests": ("request #{}", "seq", [("json_valid(request)", "is not JSON"),
                                        (_NUMBER.format("due"), "has no finite time")], ["request"]),
    "refusals": ("a refusal of request #{}", "request",
                 [(f"{_TEXT.format('field')} AND {_TEXT.format('problem')}", "has no field or problem")], []),
    "dead_letters": ("the dead letter of event {}", "event_id",
                     [(_OBJECT.format("attributes"), "has attributes that are not a JSON object")], []),
    "pending": ("a pending delivery of event {}", "event_id",
                [(f"typeof(attempt) = 'integer' AND {_NUMBER.format('due')} AND {_NUMBER.format('published')}",
                  "has no whole attempt or finite times")], []),
    # A CreateSchedule request, as the local EventBridge Scheduler kept it (yafdp.backends.local.eventbridge_scheduler)
    "schedules": ("the schedule {}", "grp || '/' || name", [
        (f"{_TEXT.format('grp')} AND {_TEXT.format('name')}", "has no group or name"),
        ("typeof(fired) = 'integer' AND fired IN (0, 1)", "has a fired flag that is neither 0 nor 1"),
        ("json_valid(request)", "has a request that is not JSON"),
        (_OBJECT.format("request"), "has a request that is not a JSON object")], ["request"]),
}


def _first_malformed(db: sqlite3.Connection, table: str, name: str, key: str, holds: list, json_columns: list) -> str | None:
    """What is wrong with the first record of ``table`` that is not as :data:`WELL_FORMED` has it, or None.

    One scan of the table checks every condition; records nested deeper than MAX_JSON_DEPTH are found by
    counting brackets in SQL (more brackets than the limit is necessary for it) and only those are measured
    (:func:`~yafdp.reading.json_depth`), so a large run is checked at SQLite's speed."""
    tests = ", ".join(f"coalesce({test}, 0)" for test, _ in holds)
    row = db.execute(f"SELECT {key}, {tests} FROM {table} WHERE NOT ({' AND '.join(f'coalesce({t}, 0)' for t, _ in holds)})"
                     " LIMIT 1").fetchone()
    if row is not None:
        problem = next(said for (_, said), held in zip(holds, row[1:]) if not held)
        return f"{name.format(excerpt(row[0], quoted=False, masked=False))} {problem}"
    for column in json_columns:
        brackets = f"length({column}) - length(replace(replace({column}, '{{', ''), '[', ''))"
        for found, text in db.execute(f"SELECT {key}, {column} FROM {table} WHERE {brackets} > ?", (MAX_JSON_DEPTH,)):
            depth = json_depth(text)
            if depth > MAX_JSON_DEPTH:
                return (f"{name.format(excerpt(found, quoted=False, masked=False))} nests {depth:,} deep, more than a run's records "
                        f"may ({MAX_JSON_DEPTH})")
    return None


def save_copy(db: sqlite3.Connection, path: str | Path) -> None:
    """Write the whole database to ``path`` (replacing it), e.g. an in-memory run to ``run.db``."""
    path = Path(path)
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    target = sqlite3.connect(str(path))
    try:
        with target:
            db.backup(target)
    finally:  # also when the backup fails (a full disk): SQLite then removes its journal
        target.close()


def set_info(db: sqlite3.Connection, **values) -> None:
    """Record facts about the run in ``run_info`` (each value as JSON), replacing earlier values of the same keys."""
    db.executemany("INSERT OR REPLACE INTO run_info (key, value) VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in values.items()])


SESSION_COUNTS = "session_counts"  # run_info key: this session's counts (a bus's ``report()``), as of its last commit
COUNTS_BEFORE = "counts_before"  # run_info key: the counts of a resumed run's earlier sessions, added up


def add_counts(before: dict, session: dict) -> dict:
    """The counts of a run's sessions added up: ``before`` (earlier sessions') and ``session`` (a bus's
    ``report()``), nested dicts key by key. A number is summed (floats rounded to 3 places), except a peak
    (``peak_*`` and all under it), the highest, and ``virtual_seconds`` (the clock a resume continues), the
    session's; anything else (a name) is the session's. Keys in one only are kept."""
    return _added(before, session, "")


def _added(before: dict, session: dict, under: str) -> dict:
    added = dict(before)
    for key, value in session.items():
        old, path = before.get(key), f"{under}.{key}"
        if isinstance(value, dict) and isinstance(old, dict):
            added[key] = _added(old, value, path)
        elif _number(value) and _number(old) and key != "virtual_seconds":
            added[key] = max(old, value) if ".peak_" in path else round(old + value, 3) if isinstance(
                old + value, float) else old + value
        else:
            added[key] = value
    return added


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def first_difference(recorded, written, under: str = "") -> str | None:
    """Where ``written`` (e.g. ``summary.json``) first differs from ``recorded`` (``run_info.summary``), as a dotted
    field name (``deliveries.total``, ``orders.refusals[0]``; the keys in ``recorded``'s order, then those only
    ``written`` has), or None when they are equal. A value of another type, or missing, differs there."""
    if isinstance(recorded, dict) and isinstance(written, dict):
        for key in [*recorded, *(k for k in written if k not in recorded)]:
            field = f"{under}.{key}" if under else str(key)
            if key not in recorded or key not in written:
                return field
            found = first_difference(recorded[key], written[key], field)
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(written, list):
        for i, (a, b) in enumerate(zip(recorded, written)):
            found = first_difference(a, b, f"{under}[{i}]")
            if found is not None:
                return found
        return None if len(recorded) == len(written) else f"{under}[{min(len(recorded), len(written))}]"
    same = (recorded == written or recorded != recorded and written != written) and type(recorded) is type(written)  # NaN
    return None if same else (under or "(the whole document)")


def rules_hash(rules: dict) -> str:
    """The SHA-256 of a run's rules (name → pattern), as ``run_info.rules_sha256`` records it."""
    return hashlib.sha256(json.dumps(rules, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# A request row's text for the workload's hash: json.dumps(row, separators=(",", ":")), by the standard library's encoder
# itself (compact_ascii's orjson pays off on objects, not on a row that is mostly one long string, the request's text).
_row_text = json.JSONEncoder(separators=(",", ":")).encode


def workload_record(db: sqlite3.Connection) -> dict:
    """What a run's workload is, as ``run_info.workload`` records it when the run starts and ``yafdp check``
    recomputes it: ``{"requests": how many rows the requests table holds, "sha256": the SHA-256 of every row
    (seq, saga id, request, same_as) in seq order}``. Reads one row at a time."""
    digest, count = hashlib.sha256(), 0
    for row in db.execute("SELECT seq, order_id, request, same_as FROM requests ORDER BY seq"):
        count += 1
        digest.update(_row_text(row).encode() + b"\n")
    return {"requests": count, "sha256": digest.hexdigest()}


def get_info(db: sqlite3.Connection) -> dict:
    """Every fact of ``run_info``, decoded from JSON."""
    return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM run_info")}


# The statements every backend writes run.db with (the local bus as it goes, the AWS export at the end).
INSERT_EVENT = ("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time, replay_name,"
                " published_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_DELIVERY = ("INSERT INTO deliveries (event_id, rule, target, attempt, delivered_at, finished_at, outcome, error)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_DEAD_LETTER = ("INSERT INTO dead_letters (event_id, rule, target, rule_arn, target_arn, error_code, error_message,"
                      " exhausted_retry_condition, retry_attempts, dead_lettered_at, redriven_at, kind, attributes)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_CUSTOM_EVENT = ("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time,"
                       " replay_name, published_by, event_group_id, deduplication_id, sequence_number, ingested_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_CUSTOM_DELIVERY = ("INSERT INTO deliveries (event_id, rule, target, attempt, delivered_at, finished_at, outcome,"
                          " error, delivery_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_CUSTOM_DEAD_LETTER = ("INSERT INTO dead_letters (event_id, rule, target, rule_arn, target_arn, error_code,"
                             " error_message, exhausted_retry_condition, retry_attempts, dead_lettered_at, redriven_at,"
                             " kind, attributes, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
INSERT_DEDUPLICATED = ("INSERT INTO deduplicated (published_at, ingested_at, event_id, deduplication_id, event_group_id,"
                       " published_by) VALUES (?, ?, ?, ?, ?, ?)")
INSERT_STATE = "INSERT INTO state (service, kind, key, item) VALUES (?, ?, ?, ?)"
UPSERT_STATE = "INSERT OR REPLACE INTO state (service, kind, key, item) VALUES (?, ?, ?, ?)"
INSERT_REFUSAL = "INSERT INTO refusals (order_id, field, problem, refused_at, request) VALUES (?, ?, ?, ?, ?)"
INSERT_REQUEST = "INSERT INTO requests (seq, order_id, due, request, same_as) VALUES (?, ?, ?, ?, ?)"
INSERT_PENDING = "INSERT INTO pending (id, event_id, rule, attempt, due, published, fault) VALUES (?, ?, ?, ?, ?, ?, ?)"
