"""The principle, through the real command line: every command, on any bad input or environment, prints one
line that says what and where, exits non-zero, and leaves the earlier run in the same folder as it was."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.catalog import DEFAULT_DATA_DIR

pytestmark = pytest.mark.slow


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and p.name in ("run.db", "summary.json")}


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory) -> Path:
    template = tmp_path_factory.mktemp("earlier") / "run"
    assert cli("run", "--orders", 20, "--seed", 3, "--out", template).returncode == 0
    return template


@pytest.fixture
def prev(earlier_run, tmp_path) -> Path:
    """An earlier run in the folder each command is pointed at."""
    folder = tmp_path / "prev"
    shutil.copytree(earlier_run, folder)
    return folder


def catalog(tmp_path: Path, change=None, service: str = "payment") -> Path:
    root = tmp_path / "catalog"
    shutil.copytree(DEFAULT_DATA_DIR, root)
    if change is not None:
        file = root / "services" / f"{service}.json"
        document = json.loads(file.read_text())
        if not change(document, root):  # True: it wrote what it breaks itself
            file.write_text(json.dumps(document))
    return root


def broken_json(doc, root):
    (root / "services" / "payment.json").write_text('{"service": "payment",')
    return True


def not_utf8(doc, root):
    (root / "services" / "payment.json").write_bytes(b'\xff\xfe{"service": "payment"}')
    return True


def bad_regex(doc, root):
    doc["events"]["Payment_Success"]["schema"]["properties"]["order_id"]["pattern"] = "^ord-(unclosed"


def ref_to_url(doc, root):
    doc["events"]["Payment_Success"]["schema"]["properties"]["items"] = {"$ref": "http://127.0.0.1:9/items.json"}


def ref_to_file_outside(doc, root):
    (root.parent / "outside.json").write_text('{"type": "array"}')
    doc["events"]["Payment_Success"]["schema"]["properties"]["items"] = {"$ref": "../../outside.json"}


def missing_handler(doc, root):
    doc["subscriptions"][0]["handler"] = "charge_order_twice"


def marketplace_wrong_shape(doc, root):
    market = json.loads((root / "marketplace.json").read_text())
    market["restaurants"]["res-napoli"]["menu"] = ["margherita", "diavola"]
    (root / "marketplace.json").write_text(json.dumps(market))
    return True


def orders_file(tmp_path: Path, content: bytes | str) -> Path:
    path = tmp_path / "orders.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


CATALOGS = {"broken_json": (broken_json, "payment.json: line 1"), "bad_regex": (bad_regex, "invalid regular expression"),
            "ref_to_url": (ref_to_url, "$ref"), "ref_to_file_outside": (ref_to_file_outside, "$ref"),
            "missing_handler": (missing_handler, "subscriptions[0].handler"),
            "marketplace_wrong_shape": (marketplace_wrong_shape, "marketplace.json: restaurants.res-napoli.menu")}

# Options that would do nothing with the others given: refused like a bad value, naming both options.
IDLE_OPTIONS = [
    ("quota-scale-without-latency-model", ["--quota-scale", "2"], "argument --quota-scale: does nothing without --latency-model"),
    ("workflow-without-orchestration", ["--workflow", "express"], "argument --workflow: does nothing without --style orchestration"),
    ("keep-without-aws", ["--keep"], "argument --keep: does nothing without --backend aws or moto"),
    ("concurrency-on-local", ["--concurrency", "8"], "argument --concurrency: does nothing without --backend moto"),
    ("point-in-time-recovery-on-local", ["--point-in-time-recovery"],
     "argument --point-in-time-recovery: does nothing without --backend moto or aws"),
    ("orders-with-orders-file", ["--orders-file", "orders.json", "--orders", "5"],
     "argument --orders: does nothing with --orders-file"),
    ("rate-with-orders-file", ["--orders-file", "orders.json", "--delivery-failure-rate", "0.5"],
     "argument --delivery-failure-rate: does nothing with --orders-file"),
    ("max-delay-without-delays", ["--max-delay", "2", "--poison-rate", "0.1"],
     "argument --max-delay: does nothing without --delay-rate, --reorder-rate or --duplicate-rate"),
    ("faults-with-orchestration", ["--style", "orchestration", "--reorder-rate", "0.3"],
     "argument --reorder-rate: does nothing with --style orchestration"),
]

# The commands that read a run folder, and what each says of one that holds no run.
RUN_READERS = {"check": lambda d: ["check", d], "resume": lambda d: ["resume", "--out", d],
               "fit-profile": lambda d: ["fit-profile", d, "--out", d.parent / "m4.json"],
               "trace": lambda d: ["trace", d, "--format", "otlp", "--out", d.parent / "trace.jsonl"]}
NOT_A_RUN = {"text": "run.db: not a run database (file is not a database)",
             "empty": "run.db: the file is empty (0 bytes)",
             "sqlite": "run.db: no table run_info, events"}

# (name, arguments given the earlier run's folder and a scratch folder, what the one line must say)
CASES = [
    ("arrival-rate-nan", lambda p, t: ["run", "--out", p, "--force", "--arrival-rate", "nan"], ["--arrival-rate", "nan"]),
    ("arrival-rate-inf", lambda p, t: ["run", "--out", p, "--force", "--arrival-rate", "inf"], ["--arrival-rate", "inf"]),
    ("max-delay-inf", lambda p, t: ["run", "--out", p, "--force", "--max-delay", "inf"], ["--max-delay"]),
    ("max-delay-nan", lambda p, t: ["run", "--out", p, "--force", "--max-delay", "nan"], ["--max-delay"]),
    ("quota-scale-nan", lambda p, t: ["run", "--out", p, "--force", "--quota-scale", "nan"], ["--quota-scale"]),
    ("rate-nan", lambda p, t: ["run", "--out", p, "--force", "--payment-failure-rate", "nan"], ["--payment-failure-rate"]),
    ("rate-inf", lambda p, t: ["run", "--out", p, "--force", "--duplicate-rate", "-inf"], ["--duplicate-rate"]),
    # Time options bounded where they are parsed, so that every time of the run stays representable.
    ("max-delay-beyond-event-age", lambda p, t: ["run", "--out", p, "--force", "--orders", 3, "--max-delay", "1e12",
                                                 "--delay-rate", "0.5", "--latency-model", "aws-eu-west-1"],
     ["argument --max-delay: must be a number of seconds from 0 to 86,400, got '1e12'"]),
    ("arrival-rate-beyond-horizon", lambda p, t: ["run", "--out", p, "--force", "--orders", 3, "--arrival-rate",
                                                  "1e-300", "--latency-model", "aws-eu-west-1"],
     ["argument --arrival-rate 1e-300: 3 orders would arrive", "horizon of 2,592,000 s"]),
    ("arrival-rate-beyond-horizon-orders-file", lambda p, t: [
        "run", "--out", p, "--force", "--arrival-rate", "1e-9", "--latency-model", "aws-eu-west-1", "--orders-file",
        orders_file(t, '[{"order_id": "ord-a"}, {"order_id": "ord-b"}]')], ["--arrival-rate 1e-09: 2 orders", "horizon"]),
    *[(f"quota-scale-{value}", lambda p, t, v=value: ["run", "--out", p, "--force", "--orders", 3, "--quota-scale", v,
                                                     "--latency-model", "aws-eu-west-1"],
       ["argument --quota-scale: must be a factor from 0.001 to 1,000", value]) for value in ("1e-300", "1e300", "0")],
    ("orders-negative", lambda p, t: ["run", "--out", p, "--force", "--orders", "-1"],
     ["yafdp run: argument --orders: must be a whole number from 1 to 10,000,000, got '-1'"]),
    ("orders-too-many", lambda p, t: ["run", "--out", p, "--force", "--orders", "10000001"], ["argument --orders"]),
    ("orders-not-whole", lambda p, t: ["run", "--out", p, "--force", "--orders", "2.5"], ["argument --orders", "'2.5'"]),
    ("seed-not-whole", lambda p, t: ["run", "--out", p, "--force", "--seed", "1.5"], ["argument --seed", "'1.5'"]),
    ("concurrency-zero", lambda p, t: ["run", "--out", p, "--force", "--backend", "moto", "--concurrency", "0"],
     ["yafdp run: argument --concurrency: must be a whole number from 1 to 50, got '0'"]),
    *[(f"concurrency-{n}", lambda p, t, n=n: ["run", "--out", p, "--force", "--backend", "moto", "--concurrency", n],
       [f"yafdp run: argument --concurrency: must be a whole number from 1 to 50, got '{n}'"])
      for n in ("51", "500", "1000000")],
    ("jobs-zero", lambda p, t: ["workbook", "--out", t / "build", "--jobs", "0"], ["argument --jobs", "'0'"]),
    ("orders-not-a-number", lambda p, t: ["run", "--out", p, "--force", "--orders", "many"], ["--orders"]),
    ("out-holds-a-run", lambda p, t: ["run", "--out", p], ["already holds a run", "--force"]),
    ("out-is-a-file", lambda p, t: ["run", "--out", p / "run.db", "--force"], ["run.db is a file"]),
    ("out-under-a-file", lambda p, t: ["run", "--out", p / "summary.json" / "x", "--force"], ["summary.json, which is a file"]),
    ("run-unknown-option", lambda p, t: ["run", "--out", p, "--force", "--bogus"],
     ["yafdp run: unrecognized arguments: --bogus (see `yafdp run --help`)"]),
    ("check-unknown-option", lambda p, t: ["check", p, "--what"], ["yafdp check: unrecognized arguments: --what"]),
    ("latency-model-unknown", lambda p, t: ["run", "--out", p, "--force", "--latency-model", "aws-mars-1"], ["aws-mars-1"]),
    ("latency-model-not-json", lambda p, t: ["run", "--out", p, "--force", "--latency-model", orders_file(t, "[{")],
     ["latency profile error", "orders.json: line 1"]),
    ("moto-file-store", lambda p, t: ["run", "--out", p, "--force", "--backend", "moto", "--store", "file"], ["--store file"]),
    *[(f"run-catalog-{name}", lambda p, t, c=change: ["run", "--store", "file", "--force", "--out", p,
                                                      "--catalog", catalog(t, c)], [said])
      for name, (change, said) in CATALOGS.items()],
    *[(f"lint-catalog-{name}", lambda p, t, c=change: ["lint", "--catalog", catalog(t, c)], [said])
      for name, (change, said) in CATALOGS.items()],
    ("catalog-missing", lambda p, t: ["catalog", "--catalog", t / "nowhere"], ["bus.json"]),
    ("plan-catalog-broken", lambda p, t: ["plan", "--catalog", catalog(t, bad_regex)], ["payment.json"]),
    ("state-machine-catalog-broken", lambda p, t: ["state-machine", "--catalog", catalog(t, missing_handler)], ["handler"]),
    ("orders-deeply-nested", lambda p, t: ["run", "--force", "--out", p, "--orders-file",
                                           orders_file(t, "[" * 100_000 + "]" * 100_000)], ["orders.json", "nested"]),
    ("orders-nested-past-the-limit", lambda p, t: ["run", "--force", "--out", p, "--orders-file", orders_file(
        t, '[{"order_id": "ord-1", "note": ' + "[" * 70 + "]" * 70 + "}]")], ["orders.json", "more than 64 levels"]),
    ("orders-not-utf8", lambda p, t: ["run", "--force", "--out", p, "--orders-file",
                                      orders_file(t, b'[{"order_id": "ord-\xff\xfe"}]')], ["orders.json", "UTF-8"]),
    ("orders-5000-digit-integer", lambda p, t: ["run", "--force", "--out", p, "--orders-file",
                                                orders_file(t, "1" * 5000)], ["orders.json", "list"]),
    ("orders-not-json", lambda p, t: ["run", "--force", "--out", p, "--orders-file", orders_file(t, "[{")], ["orders.json: line 1"]),
    ("orders-missing", lambda p, t: ["run", "--force", "--out", p, "--orders-file", t / "none.json"], ["none.json"]),
    ("orders-empty-list", lambda p, t: ["run", "--force", "--out", p, "--orders-file", orders_file(t, "[]")],
     ["orders.json: an empty list: it holds no order request to place"]),
    ("orders-zero", lambda p, t: ["run", "--force", "--out", p, "--orders", "0"],
     ["yafdp run: argument --orders: must be a whole number from 1 to"]),
    # Files are read up to their kind's limit, never without end: refused from the size of a regular file before a
    # byte is read, and from what was read of a device (/dev/zero never ends; it was read until memory ran out).
    ("orders-dev-zero", lambda p, t: ["run", "--force", "--out", p, "--orders-file", "/dev/zero"],
     ["/dev/zero: more than 134,217,728 bytes, the limit of an orders file; not read"]),
    ("orders-too-large", lambda p, t: ["run", "--force", "--out", p, "--orders-file", sparse(t / "o.json", 129 << 20)],
     ["o.json: 135,266,304 bytes, more than 134,217,728, the limit of an orders file; not read"]),
    ("catalog-file-dev-zero", lambda p, t: ["lint", "--catalog", catalog(t, lambda d, r: zeros(r / "services" / "payment.json"))],
     ["catalog error", "payment.json: more than 1,048,576 bytes, the limit of a catalog file"]),
    ("marketplace-too-large", lambda p, t: ["run", "--force", "--out", p, "--catalog",
                                            catalog(t, lambda d, r: sparse(r / "marketplace.json", 2 << 20))],
     ["marketplace.json: 2,097,152 bytes, more than 1,048,576, the limit of a catalog file"]),
    ("latency-profile-too-large", lambda p, t: ["run", "--force", "--out", p, "--latency-model", sparse(t / "p.json", 2 << 20)],
     ["latency profile error", "p.json: 2,097,152 bytes, more than 1,048,576"]),
    # JSON nested past the project's 64 levels: Python's parser would fail near 1,000 with a RecursionError
    ("catalog-nested-too-deep", lambda p, t: ["lint", "--catalog", catalog(t, lambda d, r: (r / "bus.json").write_text(
        '{"a": ' * 5000 + "1" + "}" * 5000))], ["catalog error", "bus.json: nests deeper than 64 levels"]),
    ("latency-profile-nested-too-deep", lambda p, t: ["run", "--force", "--out", p, "--latency-model",
                                                      deep_file(t / "deep.json")],
     ["latency profile error", "deep.json: nests deeper than 64 levels"]),
    ("test-pattern-dev-zero", lambda p, t: ["test-pattern", "--pattern", "@/dev/zero", "--event", "{}"],
     ["yafdp test-pattern: /dev/zero: more than 1,048,576 bytes, the limit of a --pattern file"]),
    ("orders-a-folder", lambda p, t: ["run", "--force", "--out", p, "--orders-file", t], [str(Path("orders file"))]),
    ("resume-nothing-there", lambda p, t: ["resume", "--out", t / "empty"], ["no run database"]),
    ("resume-out-is-a-file", lambda p, t: ["resume", "--out", p / "run.db"], ["is a file"]),
    ("resume-garbage", lambda p, t: ["resume", "--out", garbage(t)], ["run.db: not a run database"]),
    ("check-nothing-there", lambda p, t: ["check", t / "nowhere"], ["no run database"]),
    ("check-garbage", lambda p, t: ["check", garbage(t)], ["not a run database"]),
    ("fit-profile-nothing-there", lambda p, t: ["fit-profile", t / "nowhere", "--out", t / "p.json"], ["nowhere"]),
    # Every command that reads a run folder refuses one that holds no run the same way (rundb.open_run).
    *[(f"{command}-{kind}", lambda p, t, c=command, k=kind: [*RUN_READERS[c](garbage(t, k))], [said])
      for command in RUN_READERS for kind, said in NOT_A_RUN.items()],
    ("fit-profile-out-under-a-file", lambda p, t: ["fit-profile", p, "--out", p / "run.db" / "p.json"], ["run.db"]),
    ("trace-out-exists", lambda p, t: ["trace", p, "--format", "otlp", "--out", holding(t, "t.jsonl") / "t.jsonl"],
     ["--out", "t.jsonl exists: pass --force"]),
    # A run folder's own files are never another command's output, --force or not (it replaced run.db).
    *[(f"trace-out-{name}", lambda p, t, n=name: ["trace", p, "--format", "otlp", "--out", p / n, "--force"],
       [f"{name} is a run folder's own file"]) for name in ("run.db", "summary.json")],
    ("asyncapi-per-service-over-a-file", lambda p, t: ["catalog", "--format", "asyncapi", "--per-service",
                                                       holding(t, "order.asyncapi.json")],
     ["--per-service", "already holds order.asyncapi.json: pass --force"]),
    ("trace-out-a-folder", lambda p, t: ["trace", p, "--format", "otlp", "--out", t, "--force"], ["is a folder"]),
    # --force replaced a device, a pipe or a link with a regular file (the new-user review made /dev/full one)
    *[(f"{command}-out-{kind}-force", lambda p, t, c=c, m=make: [*c(p), m(t), "--force"], [said])
      for command, c in (("trace", lambda p: ["trace", p, "--format", "otlp", "--out"]),
                         ("fit-profile", lambda p: ["fit-profile", p, "--out"]))
      for kind, make, said in (("device", lambda t: "/dev/full", "--out /dev/full is not a regular file"),
                               ("fifo", lambda t: fifo(t / "pipe"), "pipe is not a regular file"),
                               ("symlink", lambda t: link(t / "link", t / "mine.json"), "link is a symbolic link"))],
    ("trace-catalog-broken", lambda p, t: ["trace", p, "--format", "otlp", "--out", t / "t.jsonl", "--catalog",
                                           catalog(t, bad_regex)], ["payment.json"]),
    ("trace-without-format", lambda p, t: ["trace", p], ["yafdp trace: the following arguments are required: --format"]),
    ("asyncapi-per-service-a-file", lambda p, t: ["catalog", "--format", "asyncapi", "--per-service", p / "run.db"],
     ["--per-service", "run.db is a file"]),
    ("test-pattern-bad-json", lambda p, t: ["test-pattern", "--pattern", "{bad", "--event", "{}"], ["Event pattern is not valid", "{bad"]),
    ("deploy-moto-without-server", lambda p, t: ["deploy", "--backend", "moto"], ["`yafdp moto-server`", "--endpoint-url"]),
    ("destroy-aws-with-endpoint", lambda p, t: ["destroy", "--backend", "aws", "--endpoint-url", "http://127.0.0.1:9"],
     ["--endpoint-url"]),
    ("workbook-out-is-a-file", lambda p, t: ["workbook", "--out", p / "run.db", "--only", "01"],
     ["run.db is a file, not a folder: choose a folder for the build"]),
    # The workbook never writes into a run folder (it holds no lock there), nor, unless --force, into a folder that
    # holds what no build holds (`--out .` in the repository would have put its folders among the sources).
    *[(f"workbook-out-run-folder{'-force' * len(f)}", lambda p, t, f=f: ["workbook", "--out", p, "--only", "01", *f],
       ["is a run folder", "choose another --out"]) for f in ((), ("--force",))],
    ("workbook-out-holds-other-files", lambda p, t: ["workbook", "--out", holding(t, "thesis.tex"), "--only", "01"],
     ["holds what no workbook build holds (thesis.tex)", "pass --force"]),
    ("unknown-command", lambda p, t: ["frobnicate"], ["frobnicate"]),
    ("catalog-not-utf8", lambda p, t: ["lint", "--catalog", catalog(t, not_utf8)], ["payment.json", "UTF-8"]),
    *[(f"idle-{name}", lambda p, t, o=options: ["run", "--force", "--out", p, *o], [said, "does nothing"])
      for name, options, said in IDLE_OPTIONS],
    ("workbook-no-such-chapter", lambda p, t: ["workbook", "--only", "99", "--out", t / "build"], ["--only 99", "01_identify_events"]),
    ("plan-output-without-cloudformation", lambda p, t: ["plan", "--output", "yaml"],
     ["argument --output: does nothing without --format cloudformation"]),
    ("plan-json-with-cloudformation", lambda p, t: ["plan", "--json", "--format", "cloudformation"],
     ["argument --json: does nothing with --format cloudformation"]),
    # A prefix whose names AWS would refuse: plan (every format) refuses it as deploy does, with the same check.
    *[(f"plan-{fmt}-names-too-long", lambda p, t, f=fmt: ["plan", "--format", f, "--prefix", "p" * 32],
       ["names longer than AWS allows: rule 'pppppppppppppppppppppppppppppppp-", "(71 > 64)"])
      for fmt in ("cloudformation", "json", "table")],
    ("deploy-names-too-long", lambda p, t: ["deploy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9",
                                            "--prefix", "p" * 32], ["names longer than AWS allows: rule", "(71 > 64)"]),
    ("plan-prefix-aws-refuses", lambda p, t: ["plan", "--prefix", "Bad Prefix!"], ["prefix 'Bad Prefix!'"]),
    # --endpoint-url is refused where argparse reads it, naming the option, by every command that takes it.
    *[(f"{command}-endpoint-{name}", lambda p, t, c=command, u=url: [c, "--backend", "moto", "--endpoint-url", u,
                                                                    *(["--out", t / "x"] if c == "export" else [])],
       [f"yafdp {command}: argument --endpoint-url: must be an http:// or https:// URL with a host", repr(url)])
      for command in ("deploy", "destroy", "export")
      for name, url in (("no-scheme", "notaurl"), ("no-host", "http://"), ("ftp", "ftp://127.0.0.1:5000"),
                        ("bad-port", "http://127.0.0.1:99999"), ("space", "http://127.0.0.1 :5000"))],
    ("deploy-endpoint-unreachable", lambda p, t: ["deploy", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9"],
     ["yafdp: the moto server at http://127.0.0.1:9 (not AWS): Could not connect", "http://127.0.0.1:9"]),
]


def sparse(path: Path, size: int) -> Path:
    """A regular file of ``size`` bytes that takes no room (a hole): its size alone must refuse it."""
    with open(path, "wb") as file:
        file.truncate(size)
    return path


def zeros(path: Path) -> bool:
    """``path`` as a link to /dev/zero, a file that never ends."""
    path.unlink()
    path.symlink_to("/dev/zero")
    return True


def fifo(path: Path) -> Path:
    """A named pipe at ``path``."""
    os.mkfifo(path)
    return path


def link(path: Path, to: Path) -> Path:
    """A symbolic link at ``path`` to a file of the user's, ``to``."""
    to.write_text("mine\n")
    path.symlink_to(to)
    return path


def holding(tmp_path: Path, name: str) -> Path:
    """A folder holding one file of the user's."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / name).write_text("mine\n")
    return tmp_path / "mine"


def deep_file(path: Path) -> Path:
    """A JSON file of 5,000 nested objects (30 KB)."""
    path.write_text('{"a": ' * 5000 + "1" + "}" * 5000)
    return path


def garbage(tmp_path: Path, kind: str = "text") -> Path:
    """A folder whose run.db holds no run: text, nothing, or an SQLite database of something else."""
    folder = tmp_path / "garbage"
    folder.mkdir(exist_ok=True)
    db = folder / "run.db"
    if kind == "text":
        db.write_text("not a database, just text\n" * 200)
    elif kind == "empty":
        db.write_bytes(b"")
    else:
        with sqlite3.connect(db) as other:
            other.execute("CREATE TABLE notes (text TEXT)")
        other.close()
    return folder


@pytest.mark.parametrize("name, arguments, said", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_non_zero_and_the_earlier_run_is_untouched(prev, tmp_path, name, arguments, said):
    before = fingerprint(prev)
    arguments = arguments(prev, tmp_path)
    result = cli(*arguments)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in said:
        assert fragment in lines[0], lines[0]
    assert_named_options_exist(str(arguments[0]), lines[0])
    assert fingerprint(prev) == before


@pytest.mark.parametrize("command", ["run", "workbook"])
def test_a_catalog_folder_is_never_a_run_folder(tmp_path, command):
    """`yafdp run --out` into the catalog it runs (or any folder holding bus.json or services/) is refused before
    anything is written: a run's files would sit among the catalog's, and the next load would read beside them."""
    root = catalog(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = cli(command, "--catalog", root, "--out", root, *(["--orders", 2] if command == "run" else []))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"yafdp: --out {root} is a catalog folder (it holds bus.json or services/): "
                                          "the files written there would sit among the catalog's and be read as part "
                                          "of it; choose another --out"]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("command", [["fit-profile", "{folder}", "--out", "{tmp}/profile.json"], ["check", "{folder}"],
                                     ["replay", "{folder}"]])
def test_a_folder_without_a_run_is_named_as_the_folder_to_run_into(tmp_path, command):
    """The advice names the folder to give `yafdp run --out`, never its run.db (fit-profile said `--out DIR/run.db`)."""
    folder = tmp_path / "empty"
    folder.mkdir()
    result = cli(*(part.format(folder=folder, tmp=tmp_path) for part in command))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"yafdp: no run database at {folder / 'run.db'} "
                                          f"(run `yafdp run --out {folder}` first)"]


@pytest.mark.parametrize("inside", ["services", "latency", "services/new"])
def test_a_folder_the_catalog_loader_reads_is_never_a_run_folder(tmp_path, inside):
    """A run written into the catalog's services/ (or latency/) folder would make every later load of that catalog
    fail on the run's catalog.json (or list summary.json as a latency model): refused, nothing written."""
    root = catalog(tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = cli("run", "--catalog", root, "--orders", 2, "--out", root / inside)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert f"--out {root / inside} is inside the catalog folder {root} (its {inside.split('/')[0]}/)" in line, line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def options_of(command: str) -> set[str]:
    from yafdp.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.choices)
    return {name for action in commands.choices[command]._actions for name in action.option_strings}


def assert_named_options_exist(command: str, line: str) -> None:
    """Every option a message names exists: in a quoted command (`` `yafdp resume --out DIR` ``), that command's;
    elsewhere, the command's that printed it (an option it was given and does not take excepted)."""
    import re

    from yafdp.cli import build_parser

    commands = next(a for a in build_parser()._actions if a.choices).choices
    if command not in commands:
        return
    for quoted, rest in re.findall(r"`yafdp ([a-z-]+)([^`]*)`", line):
        assert set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest)) <= options_of(quoted), line
    line = re.sub(r"`[^`]*`|unrecognized arguments: .*", "", line)
    assert set(re.findall(r"(?<![\w/.-])--[a-z][a-z-]*", line)) <= options_of(command), line


# Every path a command takes, empty: it would silently mean the current folder (`yafdp run --out ""` wrote run.db
# there). (arguments, the option the one line names)
EMPTY_PATHS = [
    (["run", "--out", ""], "--out"), (["run", "--orders-file", ""], "--orders-file"),
    (["run", "--catalog", ""], "--catalog"), (["run", "--latency-model", ""], "--latency-model"),
    (["resume", "--out", ""], "--out"), (["check", ""], "argument dir"), (["check", "x", "--catalog", " "], "--catalog"),
    (["fit-profile", "", "--out", "p.json"], "argument dir"), (["fit-profile", "x", "--out", ""], "--out"),
    (["fit-profile", "x", "--out", "p.json", "--base", ""], "--base"), (["workbook", "--out", ""], "--out"),
    (["export", "--backend", "moto", "--endpoint-url", "http://127.0.0.1:9", "--out", ""], "--out"),
    (["deploy", "--backend", "aws", "--endpoint-url", ""], "--endpoint-url"), (["lint", "--catalog", ""], "--catalog"),
    (["catalog", "--catalog", ""], "--catalog"), (["plan", "--catalog", ""], "--catalog"),
    (["test-pattern", "--pattern", "@", "--event", "{}"], "--pattern @"),
]


@pytest.mark.parametrize("arguments, option", EMPTY_PATHS, ids=[" ".join(a) for a, _ in EMPTY_PATHS])
def test_an_empty_path_is_refused_naming_the_option_and_nothing_is_written_here(tmp_path, arguments, option):
    result = subprocess.run([sys.executable, "-m", "yafdp", *arguments], capture_output=True, text=True,
                            timeout=600, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and option in lines[0] and ("must not be empty" in lines[0] or "names no file" in lines[0])
    assert list(tmp_path.iterdir()) == []  # not a run.db, a lock or a build folder in the current folder


def test_a_connection_the_runs_own_moto_server_closed_is_not_blamed_on_aws(tmp_path, monkeypatch, capsys):
    """`yafdp run --backend moto` talks to a moto server it starts itself: a connection it drops is said so
    (in-process: a subprocess cannot make that server drop a connection on cue)."""
    from botocore.exceptions import ConnectionClosedError

    import yafdp.runs
    from yafdp.cli import main

    def closed(options, progress=None):
        raise ConnectionClosedError(endpoint_url="http://127.0.0.1:45678/")

    monkeypatch.setattr(yafdp.runs, "run_saga", closed)
    assert main(["run", "--backend", "moto", "--orders", "2", "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("yafdp: the run's moto server (its own, or the one `yafdp moto-server` "
                                                   "runs; not AWS): Connection was closed"), lines


def _file_size_limit(limit: int):
    """For a subprocess: files it writes may not grow beyond ``limit`` bytes, as on a full disk (a write beyond
    fails with EFBIG, which SQLite says as "disk I/O error"; SIGXFSZ ignored so that it is an error, not a kill)."""
    import resource  # POSIX only, as the test that uses it

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


# No room to write, as a user meets it (a full disk, a quota, a file-size limit): (name, arguments given the
# earlier run's folder and a scratch folder, file-size limit, the folder whose run must be kept, what the one
# line says).
NO_ROOM = [
    ("memory-store-saving-run.db", lambda p, t: ["run", "--orders", 200, "--force", "--out", p], 100_000, True,
     ["no room to write {prev}/run.db (disk I/O error", "{prev} holds what it held before (an earlier run there is kept)"]),
    ("file-store-storing-the-workload", lambda p, t: ["run", "--orders", 2000, "--store", "file", "--force", "--out", p],
     200_000, True, ["no room to write {prev}/run.db", "{prev} holds what it held before"]),
    ("memory-store-spilling", lambda p, t: ["run", "--orders", 2000, "--force", "--out", p], 200_000, True,
     ["no room to write the memory store's temporary file", "nothing of this run was kept; {prev} holds what it held"]),
    ("asyncapi-per-service-new-folder", lambda p, t: ["catalog", "--format", "asyncapi", "--per-service", t / "new"],
     2_000, False, ["no room to write {tmp}/new/"]),
    ("file-store-as-it-runs", lambda p, t: ["run", "--orders", 150, "--store", "file", "--out", t / "new"], 200_000,
     False, ["no room to write {tmp}/new/run.db", "it keeps what was committed", "yafdp resume --out {tmp}/new"]),
]


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
@pytest.mark.parametrize("name, arguments, limit, keeps_prev, said", NO_ROOM, ids=[c[0] for c in NO_ROOM])
def test_no_room_to_write_is_one_line_exit_2_and_the_earlier_run_is_kept(prev, tmp_path, name, arguments, limit,
                                                                         keeps_prev, said):
    before = fingerprint(prev)
    result = subprocess.run([sys.executable, "-m", "yafdp", *map(str, arguments(prev, tmp_path))],
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                            preexec_fn=_file_size_limit(limit))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in said:
        assert fragment.format(prev=prev, tmp=tmp_path) in lines[0], lines[0]
    if keeps_prev:
        assert fingerprint(prev) == before
    if name == "asyncapi-per-service-new-folder":  # the folder it made goes with what it wrote there
        assert not (tmp_path / "new").exists()
    for folder in (prev, tmp_path / "new"):  # no temporary run.db, nor its journal, left behind
        if folder.exists():
            assert not [p.name for p in folder.glob(".run.db.*")]


def test_every_refusal_is_counted_and_each_printed_on_one_line(tmp_path):
    """The new-user review's case: 21 refused orders printed 20 with no word of the 21st, and an order id holding
    a newline split its refusal over two lines (a NUL went to the terminal as it was)."""
    bad = [{"order_id": f"ord-bad-{i}", "customer_id": "x"} for i in range(22)]
    bad.append({"order_id": "ord-evil\nsecond line\x00", "customer_id": "x"})
    done = cli("run", "--orders-file", orders_file(tmp_path, json.dumps(bad)), "--out", tmp_path / "run")
    # Refusing bad orders is the run's job; a run that placed none of them did not pass (exit 1), said on one line.
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"yafdp: no order was placed: all 23 of the {tmp_path / 'orders.json'} order "
                                        f"requests were refused (listed above; every one is in "
                                        f"{tmp_path / 'run' / 'run.db'}'s refusals table)"]
    lines = done.stdout.splitlines()
    assert sum(line.startswith("  refused ") for line in lines) == 20
    assert "  … and 3 more refused (every one is in run.db's refusals table)" in lines
    assert "\x00" not in done.stdout and not any(line.startswith("second line") for line in lines)
    refused = json.loads((tmp_path / "run" / "summary.json").read_text())["orders"]["refused"]
    assert refused == 23
    checked = cli("check", tmp_path / "run")  # a run of no saga passes no check: its invariants held for nothing
    assert checked.returncode == 1 and checked.stdout.splitlines()[-1] == (
        "fail  the run placed no order: no saga to check, so the invariants above prove nothing"), checked.stdout


def test_a_run_that_places_some_orders_passes_with_the_others_refused(tmp_path):
    """Refusals do not fail a run that placed orders (exit 0, nothing on stderr); only a run that placed none does."""
    good = {"order_id": "ord-good", "customer_id": "cus-ada", "restaurant_id": "res-napoli",  # README's example
            "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 8.5}], "amount": 25.5, "currency": "EUR",
            "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
    requests = [good, {"order_id": "ord-bad", "customer_id": "x"}]
    done = cli("run", "--orders-file", orders_file(tmp_path, json.dumps(requests)), "--out", tmp_path / "run")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("1 of 2 requested orders placed (1 refused)"), done.stdout


# ---------------------------------------------------------------- the new-user review of the readers and refusals

def tree(folder: Path) -> dict[str, bytes | None]:
    """Everything under ``folder`` (a folder as None), to show a refusal left it as it was."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


AWS_WITHOUT = {"region": {"AWS_DEFAULT_REGION": None, "AWS_REGION": None},
               "credentials": {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": None}}


@pytest.mark.parametrize("missing", AWS_WITHOUT)
def test_a_run_refused_after_its_options_were_read_leaves_the_folder_as_it_was(tmp_path, missing, monkeypatch):
    """The review's cases: a refused run made its --out (and left .yafdp.lock in it): one beside a lone
    summary.json, and a run on aws with no region or no credentials."""
    import os

    p2 = tmp_path / "p2"
    p2.mkdir()
    (p2 / "summary.json").write_text("{}")
    before = tree(tmp_path)
    refused = cli("run", "--orders", 3, "--out", p2)
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        f"yafdp: {p2} already holds a run (summary.json): pass --force to replace it, or choose another --out"]
    for name, value in AWS_WITHOUT[missing].items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws = subprocess.run([sys.executable, "-m", "yafdp", "run", "--backend", "aws", "--orders", "2", "--out",
                          str(tmp_path / "p3" / "deeper")], capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL, env=dict(os.environ))
    assert aws.returncode == 2 and len(aws.stderr.splitlines()) == 1, aws.stderr
    assert f"no AWS {missing}" in aws.stderr
    assert tree(tmp_path) == before  # no p3, no lock file in p2


def test_a_signal_before_the_run_starts_leaves_a_new_folder_unmade(tmp_path, paused_yafdp):
    """The review's case: SIGTERM as a run started into a new folder said it "holds what it held before", and
    left the folder made, holding .yafdp.lock. Stopped once the folder is locked (a handshake: the child waits
    at the point), before anything of the run is written."""
    out = tmp_path / "new" / "run"
    running = paused_yafdp(["run", "--orders", 20, "--out", out], event="call", match="yafdp.catalog.record.record")
    running.reached()
    assert (out / ".yafdp.lock").exists()  # the folder is locked at this point
    running.signal(signal.SIGTERM)
    stopped = running.finish()
    assert stopped.returncode == 130 and stopped.stderr.splitlines() == [
        f"yafdp: interrupted before the run started: {out} holds what it held before"], stopped.stderr
    assert list(tmp_path.iterdir()) == []  # neither new/ nor new/run is left


def test_a_memory_store_run_stopped_into_a_new_folder_leaves_no_folder(tmp_path, paused_yafdp):
    """It says the folder "holds what it held before": a new folder is not left behind, nor its lock file."""
    out = tmp_path / "new" / "run"
    running = paused_yafdp(["run", "--orders", 3000, "--out", out], event="call",
                           match="yafdp.runs.lifecycle._keeping_time.<locals>.tick")
    running.reached()  # into the run: the memory store writes nothing until the end
    running.signal(signal.SIGINT)
    stopped = running.finish()
    assert stopped.returncode == 130 and stopped.stderr.splitlines() == [
        f"yafdp: interrupted: nothing of this run was kept (the memory store writes run.db at the end); {out} holds "
        "what it held before"], stopped.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_second_writer_refused_while_the_first_holds_the_folder_takes_nothing_from_it(tmp_path, paused_yafdp):
    """The lock's safety for two writers is kept: a run refused because another holds the folder leaves the
    holder's lock file (and the first run finishes)."""
    out = tmp_path / "run"
    running = paused_yafdp(["run", "--orders", 20, "--out", out], event="call", match="yafdp.catalog.record.record")
    running.reached()
    second = cli("run", "--orders", 5, "--out", out)
    assert second.returncode == 2 and "is in use by process" in second.stderr
    assert (out / ".yafdp.lock").exists()
    assert running.finish().returncode == 0
    assert cli("check", out).returncode == 0


def unfinished(tmp_path: Path) -> Path:
    """A file-store run as one stopped before its end leaves it (run_info.status still 'running')."""
    out = tmp_path / "stopped"
    assert cli("run", "--orders", 20, "--store", "file", "--out", out).returncode == 0
    with sqlite3.connect(out / "run.db") as db:
        db.execute("UPDATE run_info SET value = ? WHERE key = 'status'", (json.dumps("running"),))
    db.close()
    return out


@pytest.mark.parametrize("reader, does", [
    (["trace", "{run}", "--format", "otlp", "--out", "{tmp}/t.jsonl"], "trace it"),
    (["trace", "{run}", "--format", "otlp"], "trace it"),
    (["fit-profile", "{run}", "--out", "{tmp}/p.json"], "fit a profile to it"),
    (["replay", "{run}"], "replay it"),
    (["check", "{run}"], "check it"),
], ids=["trace-out", "trace-stdout", "fit-profile", "replay", "check"])
def test_every_reader_of_finished_runs_refuses_a_stopped_run_saying_how_to_finish_it(tmp_path, reader, does):
    """The review's case: fit-profile and trace read a run stopped part-way (or still going) as if whole, exit 0,
    no word; check, resume and replay refused it."""
    out = unfinished(tmp_path)
    before = tree(tmp_path)
    result = cli(*(part.format(run=out, tmp=tmp_path) for part in reader))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"yafdp: {out} holds an unfinished run (status 'running': it was stopped "
                                          f"before its end): `yafdp resume --out {out}` finishes it, then {does}"]
    assert tree(tmp_path) == before


@pytest.mark.parametrize("reader", [["trace", "{run}", "--format", "otlp"], ["fit-profile", "{run}", "--out", "{tmp}/p.json"]],
                         ids=["trace", "fit-profile"])
def test_a_reader_of_finished_runs_refuses_a_run_in_progress(tmp_path, paused_yafdp, reader):
    out = tmp_path / "busy"
    running = paused_yafdp(["run", "--orders", 300, "--store", "file", "--out", out], event="call",
                           match="yafdp.runs.lifecycle._keeping_time.<locals>.tick")
    running.reached()
    result = cli(*(part.format(run=out, tmp=tmp_path) for part in reader))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"run in progress (pid {running.pid}: yafdp run, since " in result.stderr and str(out) in result.stderr
    assert not (tmp_path / "p.json").exists()
    assert running.finish().returncode == 0


def test_check_against_a_catalog_that_is_not_the_runs_says_so_and_passes_nothing(prev):
    """The review's case: it ended "the run placed no order" for a run of 20 orders, and showed invariants as
    passed with 0 sagas checked."""
    trips = Path(__file__).resolve().parents[2] / "examples" / "trip_booking"
    result = cli("check", prev, "--catalog", trips)
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert lines[-1] == ("fail  none of the run's 20 orders is a saga of the catalog it is checked against: the catalog "
                         "does not match the run, so the invariants above prove nothing")
    assert not [line for line in lines if line.startswith("pass ") and "the run's catalog" not in line], lines


@pytest.mark.parametrize("where", ["missing", "nested"])
def test_an_output_file_in_a_folder_that_does_not_exist_is_refused_and_no_folder_is_made(prev, tmp_path, where):
    """The review's case: `trace --out /nonexistent/dir/t.jsonl` made /nonexistent/dir. Every command's output
    file is refused so: trace, fit-profile, catalog --per-service (which makes the one folder it names)."""
    folder = tmp_path / "nowhere" / ("deeper" if where == "nested" else "")
    for command, option in ((["trace", prev, "--format", "otlp", "--out", folder / "t.jsonl"], "--out"),
                            (["fit-profile", prev, "--out", folder / "p.json"], "--out"),
                            (["catalog", "--format", "asyncapi", "--per-service", folder / "docs"], "--per-service")):
        result = cli(*command)
        line = one_line(result.stderr)
        assert result.returncode == 2 and line.startswith(f"yafdp: {option} {folder}/")
        assert line.endswith(f": no folder {folder}: create it first, or choose another {option}"), line
    assert not (tmp_path / "nowhere").exists()
    made = cli("catalog", "--format", "asyncapi", "--per-service", tmp_path / "docs")  # its one folder, in one that is
    assert made.returncode == 0 and len(list((tmp_path / "docs").glob("*.asyncapi.json"))) == 6, made.stderr


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert len(stderr.splitlines()) == 1, stderr
    return stderr.splitlines()[0]


@pytest.mark.parametrize("arguments, said", [
    (["run", "--latency-model", "{tmp}/u", "--out", "{tmp}/r"],
     "yafdp: latency profile error: {tmp}/u: is a folder, not a latency profile file: give a profile's JSON file, or "
     "the name of a shipped one (e.g. aws-eu-west-1)"),
    (["check", "{tmp}/nonexistent"], "yafdp: no run database at {tmp}/nonexistent/run.db: {tmp}/nonexistent does not "
                                      "exist (run `yafdp run --out {tmp}/nonexistent` first)"),
    (["check", "{tmp}/u"], "yafdp: no run database at {tmp}/u/run.db (run `yafdp run --out {tmp}/u` first)"),
    (["check", "{tmp}/c12"], "yafdp: {tmp}/c12/run.db is a folder, not a run database: remove it (or choose another "
                             "run folder); then `yafdp run --out {tmp}/c12` can write a run there"),
    (["run", "--orders", "1e3", "--out", "{tmp}/r"],
     "yafdp run: argument --orders: must be a whole number from 1 to 10,000,000, got '1e3' (see `yafdp run --help`)"),
    (["run", "--orders", "20.0", "--out", "{tmp}/r"],
     "yafdp run: argument --orders: must be a whole number from 1 to 10,000,000, got '20.0' (see `yafdp run --help`)"),
    (["run", "--seed", "-5", "--out", "{tmp}/r"],
     "yafdp run: argument --seed: must be a whole number, 0 or more, got '-5' (see `yafdp run --help`)"),
    (["replay", "{tmp}/u", "--seed", "1_0"],
     "yafdp replay: argument --seed: must be a whole number, 0 or more, got '1_0' (see `yafdp replay --help`)"),
], ids=["profile-is-a-folder", "check-nothing", "check-empty-folder", "check-run-db-folder", "orders-1e3",
        "orders-20.0", "seed-negative", "seed-underscore"])
def test_the_smaller_messages_say_what_is_true(tmp_path, arguments, said):
    """The review's smaller findings: each names what is wrong as it is, and what it advises works."""
    (tmp_path / "u").mkdir()
    (tmp_path / "c12" / "run.db").mkdir(parents=True)
    before = tree(tmp_path)
    result = cli(*(part.format(tmp=tmp_path) for part in arguments))
    assert result.returncode == 2 and one_line(result.stderr) == said.format(tmp=tmp_path)
    assert tree(tmp_path) == before
    if arguments[0] == "check" and "c12" in arguments[1]:  # the advice works once the folder is removed
        (tmp_path / "c12" / "run.db").rmdir()
        assert cli("run", "--orders", 2, "--out", tmp_path / "c12").returncode == 0


def test_one_refused_request_is_said_in_the_singular_and_an_unknown_field_is_refused_naming_it(tmp_path):
    """The review's cases: "all 1 of the … order requests were refused", and a request's unknown field dropped
    without a word (the request was placed without it)."""
    good = {"order_id": "ord-good", "customer_id": "cus-ada", "restaurant_id": "res-napoli",  # README's example
            "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 8.5}], "amount": 25.5, "currency": "EUR",
            "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
    file = orders_file(tmp_path, json.dumps([{**good, "extra": "\u001b[31mred"}]))
    done = cli("run", "--orders-file", file, "--out", tmp_path / "run")
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"yafdp: no order was placed: the 1 order request in {file} was refused (listed above; it is in "
        f"{tmp_path / 'run' / 'run.db'}'s refusals table)"]
    assert ("  refused ord-good: order refused: extra: is not a field of this request (its fields: order_id, "
            "customer_id, restaurant_id, items, amount, currency, payment_token, delivery_zone)"
            ) in done.stdout.splitlines(), done.stdout
    refusal = json.loads((tmp_path / "run" / "summary.json").read_text())["orders"]["refusals"][0]
    assert refusal["field"] == "extra"
    nested = orders_file(tmp_path, json.dumps([{**good, "items": [{**good["items"][0], "unit_prize": 8.5}]}]))
    done = cli("run", "--orders-file", nested, "--out", tmp_path / "nested")
    assert done.returncode == 1
    refusal = json.loads((tmp_path / "nested" / "summary.json").read_text())["orders"]["refusals"][0]
    assert refusal["field"] == "items[0].unit_prize" and "its fields: item_id, quantity, unit_price" in refusal["problem"]
