"""The ``yafdp`` command line: one sub-command per job, each a thin call into the package."""

# Only the standard library (and yafdp.interrupt, which is) here: the package is imported inside main(), after
# SIGINT and SIGTERM are handled, so a Ctrl-C however early is one line (`yafdp: interrupted`), never a traceback
# from the middle of an import.
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

from yafdp.interrupt import SignalStop

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a program whose output pipe was closed


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad option said in one line (what and where), exit 2. A sub-command's ``validate(parser,
    args)`` refuses, once its options are parsed, a combination argparse cannot see (through ``parser.error``)."""

    def __init__(self, *args, validate=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.validate = validate

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {_shown(message)} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args=None, namespace=None):
        parsed, rest = super().parse_known_args(args, namespace)
        if self.validate is not None:
            self.validate(self, parsed)
        return parsed, rest

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an argument nobody takes is refused by the sub-command it was given to, so the line
        names it (``yafdp run: unrecognized arguments: --bogus``) and points at its own ``--help``."""
        parsed, rest = self.parse_known_args(args, namespace)
        if rest:
            commands = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), {})
            commands.get(getattr(parsed, "command", None), self).error(f"unrecognized arguments: {' '.join(rest)}")
        return parsed


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``yafdp`` parser. Every sub-command is there with its name and help; only the one ``argv`` names (its
    first word that is not an option) gets its arguments, so a command line imports what its own options need
    and no more (the run's whole stack for ``yafdp lint``, otherwise). Without ``argv``, every sub-command gets
    its arguments."""
    from yafdp import __version__

    parser = _Parser(prog="yafdp", description=__doc__.replace("``", ""))
    parser.add_argument("--version", action="version", version=f"yafdp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else next((word for word in argv if not word.startswith("-")), "")
    for register in COMMANDS:
        try:
            register(commands if chosen is None else _OnlyTheChosen(commands, chosen))
        except _NotChosen:
            pass
    return parser


class _NotChosen(Exception):
    """A sub-command the command line does not name: its register function stops once its name and help are in."""


class _OnlyTheChosen:
    """argparse's sub-commands as a register function sees them: ``add_parser`` adds the sub-command (its name
    and help, for ``yafdp --help`` and the choices a misspelt command is shown), then, unless it is ``chosen``,
    raises :class:`_NotChosen` before the function imports what its arguments need. Every register function
    therefore calls ``add_parser`` first."""

    def __init__(self, commands, chosen: str):
        self.commands, self.chosen = commands, chosen

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        parser = self.commands.add_parser(name, **kwargs)
        if name != self.chosen:
            raise _NotChosen(name)
        return parser


def _backends() -> list[str]:
    from yafdp.runs.bootstrap import BACKENDS

    return list(BACKENDS)


def register_test_pattern(commands) -> None:
    """``yafdp test-pattern``: its options and what it does are :mod:`yafdp.patterns.cli`'s."""
    parser = commands.add_parser(
        "test-pattern", help="test whether an event matches an EventBridge event pattern",
        description="Test whether an event matches an EventBridge event pattern, like `aws events test-event-pattern`.",
        epilog=TEST_PATTERN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    from yafdp.patterns.cli import add_arguments

    add_arguments(parser)


TEST_PATTERN_EXAMPLE = """\
Each of --pattern and --event is JSON text, or @FILE to read it from a file.
Prints true or false; exits 0 on a match, 1 on no match, 2 if the pattern (or event) is invalid.
As TestEventPattern does, the event must have id, account, source, time, region, resources and detail-type.

example:
  yafdp test-pattern --pattern '{"source": [{"prefix": "orders"}]}' --event @event.json
"""


def _catalog_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="DIR", type=_folder, default=None,
                        help="catalog folder with bus.json and services/ (default: the shipped data/)")


def _load(args, *, design: bool = False):
    """The catalog of ``--catalog``, its handlers checked: every command refuses a broken one alike. A command
    that works on the design alone (``design``: catalog, lint, plan, state-machine) takes a catalog whose
    handlers are not written yet and says on stderr which are missing; the others refuse it, one line for each."""
    from yafdp.catalog import load_catalog

    catalog = load_catalog(args.catalog)
    missing = catalog.code.check(allow_missing=design)
    if missing:
        for handler in missing:
            print(f"yafdp: note: {handler}", file=sys.stderr)
        print(f"yafdp: note: {len(missing)} handler(s) not written yet: the design can be linted and planned, "
              f"not run", file=sys.stderr)
    return catalog


def register_catalog(commands) -> None:
    parser = commands.add_parser("catalog", help="print the event catalog", validate=_check_catalog_options)
    _catalog_arg(parser)
    parser.add_argument("--format", choices=["table", "json", "mermaid", "asyncapi"], default="table",
                        help="asyncapi: an AsyncAPI 3.1.0 document (default table)")
    parser.add_argument("--per-service", metavar="DIR", type=_folder, default=None,
                        help="with --format asyncapi: one document per service, DIR/<service>.asyncapi.json, as "
                             "EventCatalog's AsyncAPI generator imports them (existing files are refused unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the files --per-service would write")
    parser.set_defaults(run=run_catalog)


def _check_catalog_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.per_service is not None and args.format != "asyncapi":
        parser.error("argument --per-service: does nothing without --format asyncapi: it writes AsyncAPI documents")
    if args.force and args.per_service is None:
        parser.error("argument --force: does nothing without --per-service: it replaces the files that writes")


def run_catalog(args) -> int:
    catalog = _load(args, design=True)
    if args.per_service is not None:
        return _write_service_documents(catalog, Path(args.per_service), args.force)
    if args.format == "table":
        rows = [(e.name, e.service, e.source, e.kind, "yes" if e.terminal else "", e.origin,
                 ", ".join(s.service for s in catalog.consumers(e.name)) or "-")
                for e in catalog.events.values()]
        print(_text_table(("event", "producer", "source", "kind", "terminal", "origin", "consumers"), rows))
    elif args.format == "mermaid":
        from yafdp.analysis.graph import mermaid

        print(mermaid(catalog), end="")
    else:
        from yafdp.analysis.asyncapi import asyncapi_document

        doc = asyncapi_document(catalog) if args.format == "asyncapi" else _catalog_json(catalog)
        print(json.dumps(doc, indent=2))
    return 0


def _write_service_documents(catalog, folder: Path, force: bool) -> int:
    """``yafdp catalog --format asyncapi --per-service DIR``: every file is checked before the first is written."""
    from yafdp.analysis.asyncapi import service_documents
    from yafdp.errors import RefusedError
    from yafdp.runs.folder import check_output_file, save_output

    if folder.exists() and not folder.is_dir():
        raise RefusedError(f"--per-service {folder} is a file: give a folder")
    documents = {folder / f"{name}.asyncapi.json": document for name, document in service_documents(catalog).items()}
    for path in documents:  # each file as any command's output file, all checked before the first is written
        check_output_file(path, "--per-service", force=True, new_folder=True)
    existing = [path.name for path in documents if path.exists() or path.is_symlink()]
    if existing and not force:
        raise RefusedError(f"--per-service {folder} already holds {', '.join(existing)}: pass --force to replace "
                           "them, or choose another --per-service")
    made = not folder.exists()
    folder.mkdir(exist_ok=True)  # the one folder it names, in one that exists
    written = []
    try:
        for path, document in documents.items():
            save_output(path, json.dumps(document, indent=2) + "\n", option="--per-service", force=force,
                        command="yafdp catalog")
            written.append(path)
    except BaseException:  # e.g. no room: a folder this command made goes, with what it wrote there
        if made:
            for path in written:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    print(_shown(f"wrote {len(documents)} AsyncAPI documents, one per service, into {folder}"))
    return 0


def _catalog_json(catalog) -> dict:
    return {
        "bus": {"name": catalog.bus.name, "start_event": catalog.bus.start_event,
                "retry_policy": dict(catalog.bus.retry_policy), "archive": dict(catalog.bus.archive)},
        "events": {n: {"service": e.service, "source": e.source, "description": e.description,
                       "origin": e.origin, "kind": e.kind, "terminal": e.terminal, "schema": dict(e.schema)}
                   for n, e in catalog.events.items()},
        "subscriptions": [{"rule": s.rule, "service": s.service, "handler": s.handler, "path": s.path,
                           "purpose": s.purpose, "emits": list(s.emits), "pattern": dict(s.pattern),
                           "matches": catalog.matched_events(s)} for s in catalog.subscriptions],
    }


def _text_table(header: tuple, rows: list[tuple]) -> str:
    rows = [tuple(_shown(cell) for cell in row) for row in rows]  # names from the catalog's files
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def register_lint(commands) -> None:
    parser = commands.add_parser("lint", help="check the catalog's design; exit 1 when it finds problems")
    _catalog_arg(parser)
    parser.add_argument("--coverage", action="store_true",
                        help="also print the compensation-coverage matrix: for each failure, which compensation of "
                             "each earlier compensatable step it sets in motion")
    parser.set_defaults(run=run_lint)


def run_lint(args) -> int:
    from yafdp.analysis.lint import lint

    from yafdp.plan import build_plan

    catalog = _load(args, design=True)
    catalog.code.world()  # the world the catalog's services run in (saga.py's, e.g. marketplace.json): refused alike
    for bus in ("classic", "custom"):  # what either kind of bus would refuse (a subscriber's settings) is refused
        build_plan(catalog, bus=bus)
    findings = lint(catalog)
    if args.coverage:
        from yafdp.analysis.coverage import coverage

        cells = coverage(catalog)
        steps = list(dict.fromkeys(c.step for c in cells))
        rows = [(failure, *(str(next(c for c in cells if c.failure == failure and c.step == step)) for step in steps))
                for failure in dict.fromkeys(c.failure for c in cells)]
        print(_text_table(("failure \\ compensatable step", *steps), rows) if rows else
              "no failure may follow a compensatable step")
        print()
    for finding in findings:
        print(_shown(finding))
    print(f"{len(findings)} problem(s) in {len(catalog.events)} events and {len(catalog.subscriptions)} rules"
          if findings else f"ok: {len(catalog.events)} events, {len(catalog.subscriptions)} rules, no problems")
    return 1 if findings else 0


def register_workbook(commands) -> None:
    parser = commands.add_parser("workbook", help="execute every notebook with papermill into a build folder (+ HTML)")
    parser.add_argument("--out", type=_folder, default=None,
                        help="build folder (default: build, or build/solutions with --solutions)")
    parser.add_argument("--only", nargs="*", metavar="PREFIX", help="only the notebooks whose name starts so, e.g. 01 03")
    parser.add_argument("--backend", choices=_backends(), default=None,
                        help="run the notebooks that take a backend parameter on this backend (default: theirs, local)")
    parser.add_argument("--solutions", action="store_true",
                        help="answer every exercise with its worked solution (a teacher's copy, by default into "
                             "build/solutions, beside the learner's build)")
    parser.add_argument("--jobs", type=_integer(1), default=None,
                        help="how many chapters run side by side (default: one more than the cores)")
    parser.add_argument("--force", action="store_true",
                        help="write the build into an --out that holds other files too (never into a run folder)")
    parser.add_argument("--catalog", metavar="DIR", type=_folder, default=None,
                        help="run every chapter on this catalog folder instead of the shipped data/ (papermill's "
                             "-p catalog_dir DIR); the build goes to build/<its folder's name> unless --out")
    parser.set_defaults(run=run_workbook)


def run_workbook(args) -> int:
    from yafdp.errors import RefusedError
    from yafdp.extras import require

    require("workbook")  # before a chapter starts: its kernel would fail a cell instead
    from yafdp.workbook import UNUSED_IMPORTS, NotebookFailed, check_build_folder, leave_out, notebooks, \
        run_workbook as execute

    leave_out(UNUSED_IMPORTS)  # this process exports the chapters' HTML copies with nbconvert, which imports nbformat

    parameters = {"backend": args.backend} if args.backend else {}
    if args.solutions:
        parameters["solutions"] = True
    if args.catalog is not None:  # refused here, one line, if it does not load; each chapter then reads it
        from yafdp.catalog import load_catalog

        catalog = load_catalog(args.catalog)
        catalog.code.check()
        parameters["catalog_dir"] = str(Path(args.catalog).resolve())
    if args.out is None:  # the teacher's copy never overwrites the learner's build unless asked to
        base = f"build/{Path(args.catalog).resolve().name}" if args.catalog is not None else "build"
        args.out = f"{base}/solutions" if args.solutions else base
    check_build_folder(Path(args.out), args.force)
    if args.only and not notebooks(only=args.only):
        raise RefusedError(f"--only {' '.join(args.only)} names no chapter; the chapters are "
                           + ", ".join(p.stem for p in notebooks()))
    if args.backend == "aws":  # say so before any chapter runs: no region or no credentials is exit 2, one line
        from yafdp.backends.aws.clients import make_clients

        make_clients()
    started = time.perf_counter()
    try:
        done = execute(Path(args.out), parameters, args.only, jobs=args.jobs)
    except NotebookFailed as exc:
        for line in str(exc).splitlines():  # every chapter that failed, each with its cell
            _complain(line)
        _complain(f"{len(exc.failed)} chapter(s) failed; the others were written into {Path(args.out).resolve()}")
        return 1
    print(f"{len(done)} notebook(s) executed into {_shown(Path(args.out).resolve())} in {time.perf_counter() - started:.1f} s "
          f"({sum(chapter.cpu_seconds for chapter in done):.1f} s of CPU in the chapters)")
    return 0


def register_run(commands) -> None:
    parser = commands.add_parser("run", help="place a workload of orders (on the local bus by default); writes run.db "
                                             "and summary.json", validate=_check_run_options)
    from yafdp.runs.options import MAX_CONCURRENCY, MAX_ORDERS
    from yafdp.runtime.faults import MAX_DELAY_SECONDS
    from yafdp.simulation.quotas import QUOTA_SCALE_RANGE

    parser.add_argument("--orders", type=_integer(1, MAX_ORDERS), default=None, metavar="N",
                        help="how many orders (default 20)")
    parser.add_argument("--seed", type=_integer(0), default=0,
                        help="seed for the workload and the scheduler, a whole number, 0 or more (default 0)")
    parser.add_argument("--out", type=_run_folder, default="runs/latest",
                        help="run folder (default runs/latest); one that holds a run is refused unless --force")
    parser.add_argument("--force", action="store_true", help="replace the run already in --out")
    parser.add_argument("--store", choices=["memory", "file"], default="memory",
                        help="service state in memory (fast) or in run.db as it goes (crash-safe, resumable)")
    parser.add_argument("--arrival-rate", type=_positive, default=50.0, metavar="R",
                        help="orders per second of the workload (default 50), a Poisson stream: with --latency-model "
                             "the orders arrive so on the simulated clock. On measured time (the local backend "
                             "without --latency-model) it paces nothing in wall-clock time: the orders are placed in "
                             "arrival order as fast as this machine goes. moto and aws send them at this rate. The orders must "
                             "arrive within 30 days (orders / R at most 2,592,000 s)")
    parser.add_argument("--orders-file", metavar="FILE", type=_file, default=None,
                        help="place the order requests in this JSON list instead of generated ones (then --orders "
                             "and the business outcome rates do not apply)")
    rates = parser.add_argument_group("business outcomes (probability at each step; defaults: the catalog's saga.py)")
    rates.add_argument("--outcome-rate", type=_outcome_rate, action="append", default=None, metavar="NAME=P",
                       help="an outcome rate the catalog's workload takes (its saga.py's OUTCOME_RATES), e.g. "
                            "delivery_failure=0.2; may be repeated")
    rates.add_argument("--payment-failure-rate", type=_rate, default=None, metavar="P",
                       help="the shipped catalog's payment_failure (default 0.05)")
    rates.add_argument("--restaurant-reject-rate", type=_rate, default=None, metavar="P",
                       help="the shipped catalog's restaurant_reject (default 0.05)")
    rates.add_argument("--delivery-failure-rate", type=_rate, default=None, metavar="P",
                       help="the shipped catalog's delivery_failure (default 0.05)")
    faults = parser.add_argument_group("infrastructure faults (probability per delivery)")
    faults.add_argument("--duplicate-rate", type=_rate, default=0.0, metavar="P", help="deliver twice")
    faults.add_argument("--handler-failure-rate", type=_rate, default=0.0, metavar="P",
                        help="handler crashes before committing on the first attempt (succeeds on retry)")
    faults.add_argument("--reorder-rate", type=_rate, default=0.0, metavar="P", help="hold a delivery back so later events overtake it")
    faults.add_argument("--delay-rate", type=_rate, default=0.0, metavar="P", help="deliver late")
    faults.add_argument("--poison-rate", type=_rate, default=0.0, metavar="P", help="fail on every attempt (ends in the DLQ)")
    faults.add_argument("--publish-retry-rate", type=_rate, default=0.0, metavar="P",
                        help="per unit of work that publishes: the producer does not hear PutEvents' answer and sends "
                             "the same entries again (a Custom Event Bus answers DEDUPLICATED)")
    faults.add_argument("--max-delay", type=_bounded(0, MAX_DELAY_SECONDS, "a number of seconds"), default=None,
                        metavar="SECONDS", help="longest injected delay, of --delay-rate, --reorder-rate and "
                                                f"--duplicate-rate (default 5, at most {MAX_DELAY_SECONDS:,}: "
                                                "EventBridge's maximum event age)")
    simulation = parser.add_argument_group("simulated AWS time (see data/latency/ and data/quotas.json)")
    simulation.add_argument("--latency-model", type=_profile, default="none", metavar="NAME",
                            help="a latency profile from data/latency/ (e.g. aws-eu-west-1) or a profile file; "
                                 "'none' (default) records measured wall-clock time")
    simulation.add_argument("--quota-scale", type=_bounded(*QUOTA_SCALE_RANGE, "a factor"), default=None,
                            metavar="F", help="multiply the simulated account's quotas by F (default 1, from "
                                              f"{QUOTA_SCALE_RANGE[0]:g} to {QUOTA_SCALE_RANGE[1]:g}; with "
                                              "--latency-model)")
    simulation.add_argument("--style", choices=["choreography", "orchestration"], default="choreography",
                            help="run the saga as events on the bus (default) or as the generated state machine")
    _bus_arg(parser)
    simulation.add_argument("--workflow", choices=["standard", "express"], default=None,
                            help="the state machine's Step Functions workflow type (with --style orchestration)")
    _catalog_arg(parser)
    parser.add_argument("--backend", choices=_backends(), default="local",
                        help="local: in-process bus (default); moto: deployed to the moto server `yafdp moto-server` "
                             "runs, else to one started here for the run; "
                             "aws: deployed to your AWS account (default credentials and region), then destroyed")
    parser.add_argument("--keep", action="store_true", help="aws, moto: leave the deployment in place after the run (on "
                                                            "moto, on the server `yafdp moto-server` runs)")
    parser.add_argument("--concurrency", type=_integer(1, MAX_CONCURRENCY), default=None, metavar="N",
                        help="moto: batches each service queue's poller keeps in hand at once, each handled in a "
                             f"thread of its own, as Lambda runs invocations at once (default 4, from 1 to "
                             f"{MAX_CONCURRENCY}); on aws Lambda decides")
    parser.add_argument("--point-in-time-recovery", action="store_true",
                        help="moto/aws: keep continuous backups of the service tables (off for a run; `yafdp deploy` "
                             "turns them on)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_run)


# The options of `yafdp run` that apply only with others: left out, they take these defaults; given where they
# would do nothing, they are refused (see _idle_run_option).
RUN_DEFAULTS = {"orders": 20, "max_delay": 5.0, "quota_scale": 1.0, "workflow": "standard", "concurrency": 4}
# The shipped catalog's outcome rates, each its own option (--outcome-rate NAME=P names any catalog's).
YAFDP_RATES = {"payment_failure_rate": "payment_failure", "restaurant_reject_rate": "restaurant_reject",
               "delivery_failure_rate": "delivery_failure"}
FAULT_RATES = ("duplicate_rate", "handler_failure_rate", "reorder_rate", "delay_rate", "poison_rate",
               "publish_retry_rate")


def _check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse an option given where it would do nothing (naming the option that makes it so), as argparse refuses
    a bad value; then give the options left out their defaults."""
    idle = _idle_run_option(args)
    if idle is not None:
        parser.error(f"argument {idle[0]}: {idle[1]}")
    for name, default in RUN_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if not args.orders_file:  # a file's orders are counted when it is read (yafdp.runs.workload.workload)
        from yafdp.errors import RefusedError
        from yafdp.runs.workload import check_arrival_horizon

        try:
            check_arrival_horizon(args.orders, args.arrival_rate)
        except RefusedError as exc:
            parser.error(f"argument {exc}")


def _idle_run_option(args: argparse.Namespace) -> tuple[str, str] | None:
    """The first option of ``args`` that would do nothing with the others, and why; None if each does something."""
    def given(name: str) -> bool:  # left out, an option is None until _check_run_options gives it its default
        return getattr(args, name) is not None

    faults = [name for name in FAULT_RATES if getattr(args, name)]
    delays = ("delay_rate", "reorder_rate", "duplicate_rate")
    idle = [
        (given("orders") and args.orders_file, "orders", "does nothing with --orders-file: the file's requests "
                                                         "are the workload"),
        *[(given(rate) and args.orders_file, rate, "does nothing with --orders-file: the outcomes follow from the "
                                                   "file's orders") for rate in (*YAFDP_RATES, "outcome_rate")],
        *[(args.style == "orchestration", fault, "does nothing with --style orchestration: faults are injected into "
                                                 "the bus's deliveries") for fault in faults],
        (given("max_delay") and not any(getattr(args, d) for d in delays), "max_delay",
         "does nothing without --delay-rate, --reorder-rate or --duplicate-rate: it bounds their delays"),
        (given("quota_scale") and args.latency_model == "none", "quota_scale",
         "does nothing without --latency-model: the quotas bind on simulated AWS time only"),
        (given("bus") and args.style == "orchestration", "bus",
         "does nothing with --style orchestration: the state machine calls the services, no bus carries the events"),
        (given("workflow") and args.style != "orchestration", "workflow",
         "does nothing without --style orchestration: it is the state machine's Step Functions workflow type"),
        (args.keep and args.backend == "local", "keep", "does nothing without --backend aws or moto: only a "
                                                         "deployment outlives the run"),
        (given("concurrency") and args.backend != "moto", "concurrency",
         "does nothing without --backend moto: the local bus runs one handler at a time, and on aws Lambda decides"),
        (args.point_in_time_recovery and args.backend == "local", "point_in_time_recovery",
         "does nothing without --backend moto or aws: the local backend has no DynamoDB tables"),
    ]
    return next((("--" + name.replace("_", "-"), why) for applies, name, why in idle if applies), None)


def _number(text: str, accept, wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and accept(value)):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


def _rate(text: str) -> float:
    return _number(text, lambda v: 0.0 <= v <= 1.0, "a probability from 0 to 1 (a rate)")


def _positive(text: str) -> float:
    return _number(text, lambda v: v > 0, "a positive finite number")


def _integer(low: int | None = None, high: int | None = None):
    """An argparse type for a whole number written in digits (``1e3`` and ``2.0`` are refused: the help says a
    whole number), ``low`` or more and ``high`` or less when given."""
    wanted = "a whole number" + (f" from {low:,} to {high:,}" if high is not None else
                                 f", {low} or more" if low is not None else "")

    def check(text: str) -> int:
        try:
            value = int(text) if "_" not in text else None  # int() would also take 1_000
        except ValueError:
            value = None
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value
    return check


def _not_empty(what: str):
    """An argparse type for a value that means nothing when empty (``--out ""`` would be the current folder)."""
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"must not be empty: give {what}")
        return text
    return check


_folder, _file, _run_folder = _not_empty("a folder"), _not_empty("a file"), _not_empty("a run folder")
_run_path = _not_empty("a run folder or its run.db")
_profile = _not_empty("a profile of data/latency/ (e.g. aws-eu-west-1), a profile file, or 'none'")


def _endpoint_url(text: str) -> str:
    """An argparse type for an endpoint: an http:// or https:// URL with a host (and a port from 1 to 65535 if
    any), as botocore would take it; said here, naming the option, not as botocore's ValueError later."""
    from urllib.parse import urlsplit

    _not_empty("a URL, e.g. http://127.0.0.1:5000")(text)
    try:
        url = urlsplit(text)
        port_ok = url.port is None or url.port > 0  # .port raises ValueError for one out of range or not a number
    except ValueError:
        url, port_ok = None, False
    if (url is None or url.scheme not in ("http", "https") or not url.hostname or not port_ok
            or any(c.isspace() for c in text)):
        raise argparse.ArgumentTypeError(f"must be an http:// or https:// URL with a host, e.g. "
                                         f"http://127.0.0.1:5000, got {text!r}")
    return text


def _bounded(low: float, high: float, what: str):
    """An argparse type for a number from ``low`` to ``high``: beyond, a run's times would not be representable."""
    return lambda text: _number(text, lambda v: low <= v <= high, f"{what} from {low:g} to {high:,g}")


def _outcome_rate(text: str) -> tuple[str, float]:
    """An argparse type for ``NAME=P``: an outcome rate of the catalog's workload and its probability."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"must be NAME=P, an outcome of the catalog's workload and a probability "
                                         f"(e.g. delivery_failure=0.2), got {text!r}")
    return name.strip(), _rate(value)


def _rates(args) -> dict[str, float]:
    """The outcome rates given on the command line (the catalog's defaults for the others)."""
    rates = {name: getattr(args, option) for option, name in YAFDP_RATES.items() if getattr(args, option) is not None}
    rates.update(dict(args.outcome_rate or []))
    return rates


def run_run(args) -> int:
    from yafdp.runs import RunOptions, StuckSagasError, run_saga
    from yafdp.runtime.faults import Faults

    options = RunOptions(
        orders=args.orders, seed=args.seed, out=Path(args.out), store=args.store, arrival_rate=args.arrival_rate,
        catalog_dir=args.catalog, orders_file=Path(args.orders_file) if args.orders_file else None,
        latency_model=args.latency_model, quota_scale=args.quota_scale, style=args.style, workflow=args.workflow,
        backend=args.backend, keep=args.keep, overwrite=args.force, concurrency=args.concurrency,
        point_in_time_recovery=args.point_in_time_recovery,
        rates=_rates(args),
        faults=Faults(duplicate_rate=args.duplicate_rate, handler_failure_rate=args.handler_failure_rate,
                      reorder_rate=args.reorder_rate, delay_rate=args.delay_rate, poison_rate=args.poison_rate,
                      publish_retry_rate=args.publish_retry_rate, max_delay_seconds=args.max_delay),
        bus=args.bus,
    )
    try:
        summary = run_saga(options, progress=False if args.json else None)
    except StuckSagasError as stuck:  # the run is written: say what it did, then what is stuck (exit 1)
        _report(stuck.summary, args)
        print(f"yafdp: {stuck}", file=sys.stderr)
        return 1
    _report(summary, args, wrote=not summary.get("earlier_run_kept"))
    return 1 if _nothing_placed(summary, args) else 0


def _nothing_placed(summary: dict, args) -> bool:
    """Whether a run placed none of the orders it was given, every one refused: then it says so on stderr in one
    line (the run is written, its refusals listed above and in run.db; or, when it was to replace a run, that run is
    kept and the new one's files removed) and the command exits 1, as a run that did not pass: a workload that
    places nothing is not a saga run, and a CI job should not take it for one."""
    from yafdp.runs.earlier import placed_nothing

    if not placed_nothing(summary):
        return False
    orders = summary["orders"]
    orders_file = getattr(args, "orders_file", None)  # `yafdp resume` has none: the run's workload is in run.db
    if orders["refused"] == 1:
        source = f"in {orders_file}" if orders_file else "of the workload"
        refused = f"the 1 order request {source} was refused (listed above; it is"
    else:
        source = f"the {orders_file} order requests" if orders_file else "the workload's order requests"
        refused = f"all {orders['refused']:,} of {source} were refused (listed above; every one is"
    if summary.get("earlier_run_kept"):  # yafdp.runs.earlier: a run that places nothing replaces none
        said = (f"{refused.split(' (listed above')[0]} (listed above); the earlier run in {args.out} is kept as it "
                "was, not replaced by one that placed nothing")
    else:
        said = f"{refused} in {Path(args.out) / 'run.db'}'s refusals table)"
    print(_shown(f"yafdp: no order was placed: {said}"), file=sys.stderr)
    return True


def register_resume(commands) -> None:
    parser = commands.add_parser("resume", help="finish a file-store run that was interrupted")
    parser.add_argument("--out", type=_run_folder, required=True, help="the run folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_resume)


def run_resume(args) -> int:
    from yafdp.runs import StuckSagasError, resume_saga

    try:
        summary = resume_saga(Path(args.out), progress=False if args.json else None)
    except StuckSagasError as stuck:
        _report(stuck.summary, args)
        print(f"yafdp: {stuck}", file=sys.stderr)
        return 1
    finished = summary.pop("already_finished", False)
    repaired, unrepaired = summary.pop("repaired", {}), summary.pop("unrepaired", {})
    if finished:
        done = "; ".join(f"{Path(args.out) / name}: {what}" for name, what in {**repaired, **unrepaired}.items())
        print(_shown(f"the run in {args.out} had finished already: nothing to resume, "
                     + (f"only its files repaired ({done})" if done else "nothing changed")), file=sys.stderr)
    _report(summary, args, wrote=not finished and not summary.get("earlier_run_kept"))
    return 1 if unrepaired or (not finished and _nothing_placed(summary, args)) else 0




def _report(summary: dict, args, wrote: bool = True) -> None:
    """The run's summary on stdout: as JSON with --json, else a few lines, and the files written if ``wrote``."""
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    orders, deliveries = summary["orders"], summary["deliveries"]
    statuses = ", ".join(f"{n} {s}" for s, n in orders["by_status"].items())
    print(f"{orders['placed']} of {orders.get('requested', '?')} requested orders placed ({orders['refused']} refused)"
          + (f": {statuses}" if statuses else ""))
    for merged in orders.get("merged_duplicates", []):
        print(f"  merged {merged['copies']} identical requests for {_shown(merged['order_id'])} into one")
    refusals = orders.get("refusals", [])
    for refusal in refusals:
        print(f"  refused {_shown(refusal['order_id'] or '(no order id)')}: {_shown(refusal['problem'])}")
    if orders["refused"] > len(refusals):
        print(f"  … and {orders['refused'] - len(refusals)} more refused"
              + ("" if summary.get("earlier_run_kept") else " (every one is in run.db's refusals table)"))
    print(f"{summary['events_published']} events, {deliveries['total']} deliveries "
          f"({deliveries['ok']} ok, {deliveries['failed']} failed then retried, {deliveries['duplicate']} duplicates, "
          f"{deliveries['dead_lettered']} dead-lettered) in {summary['wall_seconds']} s")
    if "deduplicated_publishes" in summary:  # the local Custom Event Bus: what it and its FIFO queues kept back
        dropped = summary.get("queue_deduplicated")  # counted by the local bus's queues only
        print(f"Custom Event Bus: {summary.get('deduplicated_publishes', 0)} publishes answered DEDUPLICATED (not "
              "stored, not delivered)" + ("" if dropped is None else
                                          f"; {dropped} copies dropped by the FIFO queues' deduplication"))
    print(f"times: {summary.get('times', 'measured wall-clock seconds')}"
          + (f" ({summary['simulation']['virtual_seconds']} simulated seconds)" if "simulation" in summary else ""))
    if "simulation" in summary:
        for line in _simulated(summary["simulation"], summary.get("orchestration", {})):
            print(line)
    if wrote:
        from yafdp.runs.folder import RUN_FILES

        out = Path(args.out)  # catalog.json (the run's copy of its catalog) is written by a run, kept by a resume
        files = [name for name in RUN_FILES if (out / name).exists()]
        print(_shown(f"wrote {', '.join(files[:-1])} and {files[-1]} in {out}"))


def _counted(n: int, noun: str) -> str:
    """``n`` of ``noun``, in words: "1 order", "2,500 orders"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _simulated(simulation: dict, orchestration: dict) -> list[str]:
    """What a latency model's run simulated, in two lines: the saga's end-to-end latency, then Lambda's cold
    starts and waits and what the account's quotas throttled."""
    saga = simulation.get("saga_ms") or {}
    lines = [f"saga end to end (simulated): p50 {saga['p50']:,.1f} ms, p99 {saga['p99']:,.1f} ms over the "
             f"{_counted(saga['orders'], 'order')} that reached their end" if saga.get("orders") else
             "saga end to end (simulated): no order reached its end"]
    throttled = [f"{simulation.get('put_events_throttled', 0):,} PutEvents requests",
                 f"{simulation.get('invocations_throttled', 0):,} invocations"]
    if orchestration:
        throttled += [f"{orchestration.get('starts_throttled', 0):,} execution starts",
                      f"{orchestration.get('transitions_throttled', 0):,} state transitions"]
    calls = "Task invocations" if orchestration else "deliveries"
    lines.append(f"Lambda: {simulation.get('cold_starts', 0):,} cold starts, "
                 f"{simulation.get('waited_for_an_environment', 0):,} {calls} waited for an execution environment; "
                 f"throttled: {', '.join(throttled)}")
    refused, expired = simulation.get("put_events_refused", 0), simulation.get("invocations_expired", 0)
    if refused or expired:
        lines.append(f"given up: {refused:,} PutEvents requests throttled past the producer's retries, "
                     f"{expired:,} invocations held past the target's maximum event age")
    return lines


def register_replay(commands) -> None:
    parser = commands.add_parser(
        "replay", validate=_check_replay_options,
        help="replay a finished choreography run's sagas (on the Classic bus or the Custom Event Bus) through the "
             "latency model at any arrival rate, without running a handler (it assumes the handlers' decisions do "
             "not depend on timing)")
    from yafdp.runs.options import MAX_ORDERS
    from yafdp.runs.workload import ARRIVAL_HORIZON_SECONDS
    from yafdp.simulation.quotas import QUOTA_SCALE_RANGE

    parser.add_argument("dir", type=_run_path, help="a finished choreography run folder (or its run.db)")
    parser.add_argument("--arrival-rate", type=_positive, default=None, metavar="R",
                        help="orders per simulated second, a Poisson stream, each order the run's next one in turn "
                             "(default: the run's own orders at their own times)")
    parser.add_argument("--seconds", type=_bounded(0.001, ARRIVAL_HORIZON_SECONDS, "a number of seconds"),
                        default=None, metavar="S", help="with --arrival-rate: how long orders arrive (simulated s)")
    parser.add_argument("--orders", type=_integer(1, MAX_ORDERS), default=None, metavar="N",
                        help="with --arrival-rate: how many orders arrive (the first of --seconds and --orders ends it)")
    parser.add_argument("--latency-model", type=_profile, default="aws-eu-west-1", metavar="NAME",
                        help="a latency profile from data/latency/ or a profile file (default aws-eu-west-1)")
    parser.add_argument("--quota-scale", type=_bounded(*QUOTA_SCALE_RANGE, "a factor"), default=1.0, metavar="F",
                        help=f"multiply the account's quotas by F (default 1: AWS's defaults; from "
                             f"{QUOTA_SCALE_RANGE[0]:g} to {QUOTA_SCALE_RANGE[1]:g})")
    parser.add_argument("--seed", type=_integer(0), default=0,
                        help="seed of the arrivals and latencies, a whole number, 0 or more (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run_replay)


def _check_replay_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse --seconds or --orders without --arrival-rate, --arrival-rate with neither, a latency model 'none',
    a rate so low that the orders would arrive beyond a run's horizon, and a rate and --seconds that would place
    more orders than a run may (:data:`~yafdp.runs.options.MAX_ORDERS`)."""
    from yafdp.errors import RefusedError
    from yafdp.runs.options import MAX_ORDERS
    from yafdp.runs.workload import check_arrival_horizon

    if args.arrival_rate is None:
        for name in ("seconds", "orders"):
            if getattr(args, name) is not None:
                parser.error(f"argument --{name}: does nothing without --arrival-rate: the run's own orders arrive "
                             "at their own times")
    elif args.seconds is None and args.orders is None:
        parser.error("argument --arrival-rate: needs --seconds or --orders: how long orders arrive, or how many")
    elif args.orders is not None:
        try:
            check_arrival_horizon(args.orders, args.arrival_rate)
        except RefusedError as exc:
            parser.error(f"argument --arrival-rate: {str(exc).removeprefix(f'--arrival-rate {args.arrival_rate:g}: ')}")
    elif args.arrival_rate * args.seconds > MAX_ORDERS:
        parser.error(f"argument --arrival-rate: {args.arrival_rate:g} orders/s for {args.seconds:g} s would place about "
                     f"{args.arrival_rate * args.seconds:.3g} orders, more than the {MAX_ORDERS:,} a run may place: give "
                     "fewer --seconds, or --orders")
    if args.latency_model == "none":
        parser.error("argument --latency-model: must be a latency profile: a replay is simulated time, not 'none'")


def run_replay(args) -> int:
    from yafdp.runs.replaying import recording_of, replay_recording

    recording = recording_of(args.dir)
    result = replay_recording(recording, latency_model=args.latency_model, quota_scale=args.quota_scale,
                              arrival_rate=args.arrival_rate, seconds=args.seconds, orders=args.orders, seed=args.seed)
    if args.json:
        fields = {k: v for k, v in dataclasses.asdict(result).items() if k != "latencies_s"}
        print(json.dumps({**fields, "recording": {"source": recording.source, "orders": len(recording.orders),
                                                  "sagas": len(recording.graphs), "outcomes": recording.outcomes()}},
                         indent=2))
        return 0
    outcomes = ", ".join(f"{n:,} {status}" for status, n in recording.outcomes().items())
    arrivals = (f"at {args.arrival_rate:g} orders/s" if args.arrival_rate is not None else "at the run's own times")
    left_out = f"; {recording.left_out:,} requests the run refused or did not finish are not" if recording.left_out else ""
    print(f"recorded: {_counted(len(recording.orders), 'order')} of {recording.source} ({outcomes}), "
          f"{_counted(len(recording.graphs), 'distinct saga')}{left_out}")
    print(f"replayed {_counted(result.orders, 'order')} {arrivals}, latency model {args.latency_model!r}, quotas "
          f"x{args.quota_scale:g}, without running a handler, on the {result.simulation['bus']} "
          f"({result.wall_seconds:.2f} s of wall time, {result.simulation['virtual_seconds']:,.3f} simulated seconds)")
    deliveries = result.deliveries
    print(f"{result.placed:,} placed, {result.refused:,} refused (PutEvents throttled past the client's retries); "
          f"{result.finished:,} reached their end, {result.not_finished:,} did not; {deliveries['total']:,} handler "
          f"runs ({deliveries['ok']:,} ok, {deliveries['failed']:,} failed then retried, {deliveries['dead_lettered']:,} "
          "dead-lettered)")
    for line in _simulated({**result.simulation, "saga_ms": result.saga_ms}, {}):
        print(line)
    if "held_back_behind_their_group" in result.simulation:
        print(f"Custom Event Bus: {result.simulation['held_back_behind_their_group']:,} deliveries held back behind an "
              "earlier event of their group (FIFO subscribers and FIFO queues keep each order's events in order)")
    return 0


def register_check(commands) -> None:
    parser = commands.add_parser("check", help="audit a finished run against its catalog; exit 1 if any invariant "
                                               "fails (or is skipped, with --strict), 2 for a run in progress or "
                                               "stopped before its end, or a --catalog that does not load")
    parser.add_argument("dir", type=_run_path, help="a run folder (or its run.db)")
    parser.add_argument("--catalog", metavar="DIR", type=_folder, default=None,
                        help="the catalog to audit the run against (default: the one the run recorded, proven "
                             "unchanged in its folder and in the run folder's copy, catalog.json)")
    parser.add_argument("--strict", action="store_true",
                        help="a check that had to be skipped (e.g. no Loyalty service) fails the run too (not one "
                             "that does not apply to its kind of bus)")
    parser.set_defaults(run=run_check)


def run_check(args) -> int:
    from yafdp.analysis.check import EVERY_SAGA_TERMINAL, check_run, summary_line

    results = check_run(args.dir, args.catalog, finished_only=True)
    for result in results:
        verdict = result.verdict
        print(f"{verdict:4}  {result.name}: {result.promise} ({result.checked} checked)")
        if result.skipped:
            print(f"      {_shown(result.skipped)}")
        for offender in result.offenders[:20]:  # values from the run's database
            print(f"      {_shown(offender)}")
        if len(result.offenders) > 20:
            print(f"      … and {len(result.offenders) - 20} more")
    print(summary_line(results))
    failed = not all(r.passed for r in results) or (args.strict and any(r.skipped and r.applies for r in results))
    sagas = next((r for r in results if r.name == EVERY_SAGA_TERMINAL), None)
    if sagas is not None and not sagas.checked and sagas.offenders:  # no saga was checked: it says why
        print(_shown(f"fail  {sagas.offenders[0].removeprefix('not checked: ')}, so the invariants above prove "
                     "nothing"))
    return 1 if failed else 0


def register_trace(commands) -> None:
    parser = commands.add_parser("trace", help="write a run as OpenTelemetry traces (OTLP JSON lines, one trace per order)",
                                 validate=_check_trace_options)
    parser.add_argument("dir", type=_run_path, help="a run folder (or its run.db)")
    parser.add_argument("--format", choices=["otlp"], required=True,
                        help="otlp: OTLP JSON, one ExportTraceServiceRequest per line (an OpenTelemetry Collector's "
                             "otlpjsonfile receiver reads it)")
    parser.add_argument("--out", type=_file, default=None,
                        help="the file to write (refused if it exists, unless --force); default: standard output")
    parser.add_argument("--force", action="store_true", help="replace the file --out names")
    parser.add_argument("--catalog", metavar="DIR", type=_folder, default=None,
                        help="the catalog the run was made with, for the names of its resources (default: the one "
                             "the run records)")
    parser.set_defaults(run=run_trace)


def _check_trace_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.force and args.out is None:
        parser.error("argument --force: does nothing without --out: it replaces the file --out names")


def run_trace(args) -> int:
    from yafdp.analysis.otlp import write_otlp
    from yafdp.runs import finished, folder

    finished.require_finished(args.dir, "trace it")  # said before any file is made, as a missing or unreadable run
    if args.out is None:
        counts = write_otlp(args.dir, sys.stdout, args.catalog)
    else:
        out = folder.check_output_file(Path(args.out), "--out", args.force)
        counts = folder.save_output(out, lambda stream: write_otlp(args.dir, stream, args.catalog), option="--out",
                                    force=args.force, command="yafdp trace")
    print(_shown(f"wrote {counts['traces']} traces ({counts['spans']} spans, {counts['links']} links) as OTLP JSON"
                 + (f" to {args.out}" if args.out else "")), file=sys.stderr)
    return 0


def register_state_machine(commands) -> None:
    parser = commands.add_parser("state-machine", help="print the order saga as a Step Functions state machine (ASL)")
    _catalog_arg(parser)
    parser.add_argument("--prefix", default="yafdp", help="resource name prefix (default yafdp)")
    parser.set_defaults(run=run_state_machine)


def run_state_machine(args) -> int:
    from yafdp.plan.step_functions import state_machine_definition
    from yafdp.plan import build_plan

    catalog = _load(args, design=True)
    print(json.dumps(state_machine_definition(catalog, build_plan(catalog, args.prefix)), indent=2))
    return 0


def register_fit_profile(commands) -> None:
    parser = commands.add_parser("fit-profile", help="fit a latency profile to a run's measured times (e.g. on AWS)")
    parser.add_argument("dir", type=_run_path, help="a run folder (or its run.db), e.g. from a moto or AWS run")
    parser.add_argument("--out", type=_file, required=True, help="where to write the profile, e.g. my-account.json "
                                                                  "(an existing file is refused unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the file --out names")
    parser.add_argument("--base", type=_profile, default="aws-eu-west-1",
                        help="profile that supplies what the run cannot measure")
    parser.set_defaults(run=run_fit_profile)


def run_fit_profile(args) -> int:
    from yafdp.runs import finished, folder

    path = folder.check_output_file(Path(args.out), "--out", args.force)  # before the work, as after it
    finished.require_finished(args.dir, "fit a profile to it")  # a part of a run would be fitted as if whole
    from yafdp.simulation.fitting import fit_profile
    from yafdp.simulation.profiles import load_profile, profile_text

    document = fit_profile(args.dir, base=args.base, name=Path(args.out).stem)
    folder.save_output(path, profile_text(document), option="--out", force=args.force, command="yafdp fit-profile",
                       check=load_profile)
    hops = document["distributions_ms"]
    for key in ("eventbridge_delivery", "step_functions_standard_task", "step_functions_express_task", "handler"):
        if "fitted_from" in hops[key].get("source", {}):
            print(f"{key}: " + ", ".join(f"{q} {hops[key][q]} ms" for q in ("p10", "p50", "p90", "p99")))
    print(_shown(f"wrote {path}; use it with: yafdp run --latency-model {path}"))
    fitted = document.get("fitted_from", {})
    if fitted.get("backend") == "local":  # fitted all the same: a user may want this machine's figures on purpose
        model = fitted.get("latency_model")  # "none" in the run's record of a run on measured time
        times = (f"the draws of the latency model {model!r}" if model not in (None, "none") else
                 "this machine's in-process times")
        print(_shown(f"yafdp fit-profile: note: {args.dir} ran on the local bus, so the hops fitted are {times}, not "
                     f"AWS's: fit a run made with --backend aws to model AWS"), file=sys.stderr)
    return 0


def register_plan(commands) -> None:
    parser = commands.add_parser("plan", help="print the deployment plan: bus, rules, targets, queues, tables, "
                                              "functions and IAM policy documents", validate=_check_plan_options)
    _catalog_arg(parser)
    parser.add_argument("--prefix", default="yafdp", help="the name prefix of every resource (default yafdp)")
    parser.add_argument("--json", action="store_true", help="the whole plan as JSON, policy documents included")
    parser.add_argument("--format", choices=["table", "json", "cloudformation"], default=None,
                        help="table (default), json (as --json) or cloudformation: the plan as a CloudFormation "
                             "template to deploy with your usual tools (parameters: the S3 bucket and key of the "
                             "Lambda package)")
    parser.add_argument("--output", choices=["json", "yaml"], default=None,
                        help="the template's syntax with --format cloudformation (default json)")
    _bus_arg(parser)
    parser.set_defaults(run=run_plan)


def _bus_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bus", choices=["classic", "custom"], default=None,
                        help="which kind of EventBridge bus: classic (rules and targets, 'Custom Event Bus - Classic') "
                             "or custom (the Custom Event Bus: FIFO per event group, deduplication at publish, "
                             "retention); default: the catalog's (bus.json 'kind')")


def _check_plan_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse --output without --format cloudformation, and --json with another --format; then the defaults."""
    if args.output is not None and args.format != "cloudformation":
        parser.error("argument --output: does nothing without --format cloudformation: it is the template's syntax")
    if args.json and args.format not in (None, "json"):
        parser.error(f"argument --json: does nothing with --format {args.format}: --json is --format json")
    args.format, args.output = args.format or ("json" if args.json else "table"), args.output or "json"


def run_plan(args) -> int:
    from yafdp.plan import build_plan
    from yafdp.plan.custom_bus import REPLACEMENT_CAVEAT
    from yafdp.plan.service_quotas import check_deployable

    if args.format == "cloudformation":
        from yafdp.plan.cloudformation import cloudformation_template, render, template_plan

        plan = template_plan(_load(args, design=True), args.prefix, bus=args.bus)
        template = cloudformation_template(plan)
        check_deployable(plan, template)  # what AWS would refuse is not printed as a template to deploy elsewhere
        print(render(template, args.output), end="")
        return 0
    plan = build_plan(_load(args, design=True), args.prefix, run_id=args.prefix, bus=args.bus)
    check_deployable(plan)
    if args.json or args.format == "json":
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    if plan.bus_kind == "custom":
        print(f"Custom Event Bus {plan.bus} (retention {plan.retention_days} days, EventGroupId = "
              f"{'.'.join(plan.event_group)}, deduplication: {plan.deduplication}), tags {plan.tags}; ARNs use account "
              f"{plan.account} in {plan.region} until deployed")
        print(_text_table(("subscriber", "type", "service", "handler", "target", "on-failure queue", "retries / age"),
                          [(s.name, s.type, s.service, s.target.handler,
                            s.target.queue if s.target.kind == "queue" else f"function ({s.invocation_type})",
                            s.target.dead_letter_queue, f"{s.target.retry_policy.maximum_retry_attempts} / "
                            f"{s.target.retry_policy.maximum_event_age_seconds} s") for s in plan.subscribers]))
        print(f"{REPLACEMENT_CAVEAT}.")
    else:
        print(f"bus {plan.bus} (archive {plan.archive}, {plan.archive_retention_days} days), tags {plan.tags}; "
              f"ARNs use account {plan.account} in {plan.region} until deployed")
        print(_text_table(("rule", "service", "handler", "target queue", "dead-letter queue", "retries"),
                          [(r.name, r.service, r.target.handler, r.target.queue, r.target.dead_letter_queue,
                            r.target.retry_policy.maximum_retry_attempts) for r in plan.rules]))
    print()
    print(_text_table(("service", "queue (→ dead-letter queue after n receives)", "table", "function", "role", "may publish"),
                      [(s.name, f"{s.queue} (→ {s.queue_dead_letter_queue} after {s.max_receive_count})", s.table,
                        s.function, s.role, ", ".join(s.may_emit) or "-") for s in plan.services]))
    print()
    print(_text_table(("kind", "DeletionPolicy", "UpdateReplacePolicy", "why (the template's choice for what holds data)"),
                      [(kind, policy.deletion, policy.update_replace, policy.why)
                       for kind, policy in plan.removal_policies.items()]))
    print("\n(`yafdp plan --json` shows every IAM policy document)")
    return 0


def _aws_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=[b for b in _backends() if b != "local"], required=True,
                        help="moto: the moto server `yafdp moto-server` runs (or the one at --endpoint-url); aws: your "
                             "account (default credentials and region)")
    parser.add_argument("--prefix", default="yafdp", help="the name prefix of every resource (default yafdp)")
    parser.add_argument("--endpoint-url", metavar="URL", type=_endpoint_url,
                        help="moto: another moto server than the one `yafdp moto-server` runs, e.g. http://127.0.0.1:5000")
    _bus_arg(parser)
    parser.add_argument("--bus-endpoint-url", metavar="URL", type=_endpoint_url,
                        help="with --backend moto and a Custom Event Bus: another served bus than the one `yafdp "
                             "moto-server` serves (moto has none), e.g. what `yafdp serve --endpoint-url <the moto "
                             "server>` prints")
    _catalog_arg(parser)


def _bus_kind(args) -> str:
    """The kind of bus a deploy, export or destroy is about: --bus, else the catalog's."""
    return args.bus or _load(args).bus.kind


def _aws_clients(args):
    from yafdp.errors import RefusedError
    from yafdp.extras import require

    require("aws")
    from yafdp.backends.aws.clients import make_clients

    custom = _bus_kind(args) == "custom"
    if args.bus_endpoint_url and (args.backend == "aws" or not custom):
        raise RefusedError("argument --bus-endpoint-url: does nothing "
                           + ("with --backend aws: on AWS the Custom Event Bus is AWS's own" if args.backend == "aws"
                              else "without --bus custom: a Classic bus is moto's own"))
    if args.backend == "moto" and not args.endpoint_url:
        from yafdp.backends.aws.moto_server import running_server

        found = running_server()
        if found is None:
            raise RefusedError("--backend moto needs a moto server that outlives this command: start one with "
                               "`yafdp moto-server` (in another terminal; Ctrl-C stops it), or pass --endpoint-url URL")
        args.endpoint_url = found["url"]
        if custom and not args.bus_endpoint_url:
            args.bus_endpoint_url = found.get("bus_url")  # the Custom Event Bus `yafdp moto-server` serves beside it
    if args.backend == "aws" and args.endpoint_url:
        raise RefusedError("--endpoint-url is for --backend moto; --backend aws uses your AWS account")
    if custom and args.backend == "moto" and not args.bus_endpoint_url:
        raise RefusedError("--backend moto --bus custom needs --bus-endpoint-url: moto has no Custom Event Bus; start "
                           f"one with `yafdp serve --endpoint-url {args.endpoint_url}` and pass the URL it prints")
    return make_clients(args.endpoint_url, bus_endpoint_url=args.bus_endpoint_url, custom_bus=custom)


def register_moto_server(commands) -> None:
    parser = commands.add_parser("moto-server", help="run a moto server (AWS's APIs, emulated, offline) until Ctrl-C; "
                                                     "`--backend moto` commands use it while it runs")
    parser.add_argument("--port", type=_integer(0, 65535), default=0,
                        help="its port on 127.0.0.1 (default 0: a free one; the commands find it either way)")
    parser.set_defaults(run=run_moto_server)


def run_moto_server(args) -> int:
    import time

    from yafdp.backends.aws.moto_server import MotoServer, announce, running_server, withdraw
    from yafdp.errors import RefusedError

    found = running_server()
    if found is not None:
        raise RefusedError(f"a moto server is already running at {found['url']} (pid {found['pid']}); `--backend moto` "
                           "commands use it. Stop it with Ctrl-C where it runs first")
    server = MotoServer(port=args.port)
    try:
        url = server.start()
    except OSError as exc:  # the port is taken
        raise RefusedError(f"argument --port: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from None
    served = None
    try:
        from yafdp.runs.bootstrap import serve_custom_event_bus

        served = serve_custom_event_bus(endpoint_url=url)  # moto has no Custom Event Bus: served beside it
        where = announce(url, bus_url=served.url)
        print(f"moto server at {url} (pid {os.getpid()}, announced in {where}). `yafdp deploy`, `run`, `export` and "
              "`destroy` with --backend moto use it while it runs; its deployments live as long as it does. "
              "Ctrl-C stops it.", flush=True)
        print(f"the Custom Event Bus (eventbridgev2) is served beside it at {served.url} (--bus custom deploys there); "
              "it accepts any credentials and checks no signature", flush=True)
        while True:
            time.sleep(3600)  # until SIGINT or SIGTERM
    finally:
        withdraw(url)
        if served is not None:
            served.close()
        server.stop()
        print(f"moto server at {url} stopped: its deployments ended with it", flush=True)


def register_deploy(commands) -> None:
    parser = commands.add_parser("deploy", help="apply the plan to AWS or a moto server; idempotent, prints what it changes")
    _aws_target_args(parser)
    parser.set_defaults(run=run_deploy)


def run_deploy(args) -> int:
    from yafdp.backends.aws.deployment import deploy

    changes: list[str] = []

    def echo(line: str) -> None:
        changes.append(line)
        print(line)

    plan = deploy(_aws_clients(args), _load(args), backend=args.backend, prefix=args.prefix, catalog_dir=args.catalog,
                  echo=echo, bus=args.bus)
    print(f"{len(changes)} change(s); the deployment {plan.prefix} is up to date"
          + ("" if args.backend == "aws" else " (on moto the functions are deployed but not run: "
                                               "`yafdp run --backend moto` runs them in-process)"))
    return 0


def register_destroy(commands) -> None:
    parser = commands.add_parser("destroy", help="remove what `yafdp deploy` created (found by prefix and tags); safe to rerun")
    _aws_target_args(parser)
    parser.set_defaults(run=run_destroy)


def run_destroy(args) -> int:
    clients = _aws_clients(args)
    from yafdp.backends.aws.teardown import destroy, inventory

    found = inventory(clients, args.prefix)
    _refuse_half_a_custom_bus(args, found)
    deleted = destroy(clients, args.prefix, found=found)
    print(f"deleted {len(deleted)} resource(s) named {_shown(args.prefix)}-…")
    return 0


def register_export(commands) -> None:
    parser = commands.add_parser("export", help="write a kept deployment's run (its tables and dead-letter queues) "
                                                "as run.db, e.g. after a run that could not save")
    _aws_target_args(parser)
    parser.add_argument("--out", type=_run_folder, required=True,
                        help="the run folder to write run.db into (refused if it holds a run, unless --force)")
    parser.add_argument("--force", action="store_true", help="replace the run already in --out")
    parser.set_defaults(run=run_export)


def run_export(args) -> int:
    from yafdp.errors import RefusedError
    from yafdp.plan import build_plan
    from yafdp.runs import folder
    from yafdp.runtime import rundb

    out = folder.check_out(Path(args.out))
    if folder.holds_run(out) and not args.force:
        folder.refuse_existing(out)
    clients = _aws_clients(args)
    from yafdp.backends.aws.export import export_run
    from yafdp.backends.aws.teardown import inventory
    from yafdp.catalog import record as catalog_record

    found = inventory(clients, args.prefix)
    if not found:
        raise RefusedError(f"no deployment named {args.prefix}-… (tagged Project=yafdp, RunId={args.prefix}) to export")
    _refuse_half_a_custom_bus(args, found)
    catalog = _load(args)
    plan = build_plan(catalog, args.prefix, region=clients.region, account=clients.account(),
                      partition=clients.partition(), run_id=args.prefix, bus=args.bus)
    db = rundb.connect(None)
    rules = {r.name: r.pattern for r in plan.routes}
    recorded = catalog_record.record(catalog)
    rundb.set_info(db, backend=args.backend, prefix=args.prefix, region=clients.region, status="exported",
                   bus=plan.bus_kind, catalog=recorded,
                   catalog_dir=str(args.catalog) if args.catalog else None,
                   services=list(catalog.services), sources={s.source: s.name for s in catalog.services.values()},
                   rules=rules, rules_sha256=rundb.rules_hash(rules),
                   times="measured wall-clock seconds since the first recorded moment of the deployment's run")
    counts = export_run(db, plan, clients, None)
    try:
        with folder.FolderLock(out, "yafdp export"):  # one writer at a time, as for a run
            if folder.holds_run(out) and not args.force:  # one may have been saved there meanwhile
                folder.refuse_existing(out)
            folder.replace_run_db(out, lambda path: rundb.save_copy(db, path),
                                  f"{out} holds what it held before; the deployment is still there to export again",
                                  also=(catalog_record.COPY_NAME,))
            with folder.room_to_write(out / catalog_record.COPY_NAME, f"{out / 'run.db'} holds the run; its catalog "
                                      "is recorded in run_info"):
                folder.write_atomically(out / catalog_record.COPY_NAME, catalog_record.copy(catalog, recorded))
    finally:
        db.close()
    print(_shown(f"exported {counts['events']} events, {counts['deliveries']} deliveries and {counts['dead_letters']} dead "
          f"letters of {args.prefix} into {out / 'run.db'}; the deployment is still there "
          f"(`yafdp destroy --backend {args.backend} --prefix {args.prefix}"
          f"{' --bus custom' if plan.bus_kind == 'custom' else ''}` removes it)"))
    return 0


def _refuse_half_a_custom_bus(args, found) -> None:
    """Refuse an export or destroy of a Custom Event Bus deployment asked without ``--bus custom`` (its bus and
    subscribers would be left behind, its FIFO queues looked for under the Classic names)."""
    from yafdp.backends.aws.teardown import looks_custom
    from yafdp.errors import RefusedError

    if _bus_kind(args) != "custom" and looks_custom(found):
        raise RefusedError(f"the deployment {args.prefix} is on a Custom Event Bus (FIFO service queues, no Classic "
                           f"bus): pass --bus custom, so that its bus and subscribers are {args.command}ed too")


def register_serve(commands) -> None:
    parser = commands.add_parser("serve", help="serve the Custom Event Bus (boto3's eventbridgev2, the AWS CLI's "
                                               "eventsv2) on AWS's wire protocol, on a loopback address, until "
                                               "Ctrl-C; any credentials, no signature check", validate=_check_serve)
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (default 127.0.0.1); one that is not a loopback address is "
                             "refused unless --i-know is given too")
    parser.add_argument("--i-know", action="store_true",
                        help="serve on the non-loopback --host anyway: anyone who can reach it can use it, with any "
                             "credentials")
    parser.add_argument("--port", type=_integer(0, 65_535), default=0, help="the port (default 0: a free one)")
    parser.add_argument("--endpoint-url", metavar="URL", type=_endpoint_url,
                        help="the moto server whose SQS queues and IAM roles the subscribers use (default: one "
                             "started in this process, its URL printed)")
    parser.add_argument("--seed", type=_integer(0), default=None,
                        help="seed of the ids the bus generates (default: a random one)")
    parser.set_defaults(run=run_serve)


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A --host that is not a loopback address needs --i-know as well; --i-know alone does nothing."""
    if not _loopback(args.host) and not args.i_know:
        parser.error(f"argument --host: {args.host} is not a loopback address, and the endpoint accepts any "
                     "credentials and checks no signature: anyone who can reach it can use it. Give --i-know too "
                     "to serve on it anyway")
    if args.i_know and _loopback(args.host):
        parser.error(f"argument --i-know: does nothing with --host {args.host}, a loopback address: it is for a "
                     "--host that is not one")


def run_serve(args) -> int:
    import time

    from yafdp.errors import RefusedError
    from yafdp.runs.bootstrap import serve_custom_event_bus

    from botocore.exceptions import BotoCoreError, ClientError

    try:
        served = serve_custom_event_bus(endpoint_url=args.endpoint_url, host=args.host, port=args.port, seed=args.seed)
    except (BotoCoreError, ClientError) as exc:  # asking the moto server which account it is
        raise RefusedError(f"argument --endpoint-url: the moto server at {args.endpoint_url} does not answer as one: "
                           f"{exc}") from None
    except OSError as exc:
        raise RefusedError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    try:
        print(f"the Custom Event Bus (eventbridgev2) is served at {served.url}", flush=True)
        print(f"its subscribers deliver to the SQS queues and check the IAM roles of the moto server at "
              f"{served.targets_url}, account {served.service.account}, region {served.service.region}", flush=True)
        print("it accepts any credentials and checks no signature; Ctrl-C (SIGINT) or SIGTERM stops it, and its buses "
              "end with it", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt as exc:
        served.close()
        answered = sum(served.endpoint.requests.values())
        stopped = KeyboardInterrupt(*exc.args)
        stopped.message = (f"serve stopped ({exc.args[0] if exc.args else 'SIGINT'}) after "
                           f"{_counted(answered, 'request')}")
        raise stopped from None
    finally:
        served.close()


COMMANDS: list = [register_catalog, register_lint, register_test_pattern, register_workbook, register_run, register_resume,
                  register_replay, register_check, register_trace, register_state_machine, register_fit_profile,
                  register_plan, register_deploy, register_export, register_destroy, register_moto_server,
                  register_serve]


def main(argv: list[str] | None = None, stop: SignalStop | None = None) -> int:
    """Run the command line; returns the exit code: 0 done, 1 a check or a run did not pass, 2 refused or broken,
    130 stopped by SIGINT or SIGTERM (however early: both are handled before the package is imported), 141 when
    the reader of stdout went away (``yafdp run | head -1``), silently, as a program killed by SIGPIPE. Whatever
    goes wrong is said in one line on stderr, never a traceback (``YAFDP_TRACEBACK=1`` shows the traceback of an
    unexpected error). ``stop``: the :class:`~yafdp.interrupt.SignalStop` the entry point installed before it
    imported this module (one is installed here otherwise); its handlers are given back at the end."""
    stop = stop or SignalStop()
    try:
        try:
            argv = sys.argv[1:] if argv is None else argv
            args = build_parser(argv).parse_args(argv)  # a signal meanwhile waits for the end (see SignalStop)
            stop.arm()
            code = _run(args)
            sys.stdout.flush()  # a closed pipe is met here, not in the interpreter's last flush
            return code
        except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM (see SignalStop)
            _complain(getattr(exc, "message", "interrupted"))
            return 130
        except BrokenPipeError:
            return _stdout_closed()
    finally:
        stop.restore()


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command, every error the project expects said in one line."""
    from yafdp.catalog import CatalogError
    from yafdp.errors import BackendError, ConfigurationError, RefusedError, RunFolderError

    try:
        return args.run(args) or 0
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except CatalogError as exc:
        from yafdp.simulation.profiles import LatencyProfileError

        kind = "latency profile error" if isinstance(exc, LatencyProfileError) else "catalog error"
        for line in str(exc).splitlines() or [""]:  # a catalog with handlers missing: one line for each
            _complain(f"{kind}: {line}")
        return 2
    except (RefusedError, ConfigurationError, RunFolderError) as exc:
        _complain(exc)
        return 2
    except BackendError as exc:  # e.g. a run on moto or AWS whose orders did not all finish in time
        _complain(exc)
        return 1
    except OSError as exc:  # the environment: a file that cannot be read or written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        _complain(f"{where}{exc.strerror or exc}")
        return 2
    except Exception as exc:
        from yafdp.extras import missing_extra_message

        missing = missing_extra_message(exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing:  # an optional part of yafdp (an extra) that is not installed
            print(f"yafdp {args.command}: {missing}", file=sys.stderr)
            return 2
        if type(exc).__module__.startswith("botocore"):  # AWS or the endpoint answered (or did not): not a bug here
            _complain(f"{_endpoint_name(args)}: {exc}")
            return 2
        if os.environ.get("YAFDP_TRACEBACK"):
            raise
        _complain(f"unexpected error: {type(exc).__name__}: {exc} (a bug: YAFDP_TRACEBACK=1 shows where)")
        return 1


def _shown(text) -> str:
    """``text`` as it may reach a terminal: one line, nothing in it a terminal would act on
    (:func:`yafdp.quoting.printable`). Every value from a file, an option or a run's database passes here."""
    from yafdp.quoting import printable

    return printable(text)


def _complain(message) -> None:
    """Say what went wrong on stderr, in one line however the message was made."""
    print(f"yafdp: {_shown(message)}", file=sys.stderr)


def _endpoint_name(args: argparse.Namespace) -> str:
    """Who answered (or did not) a boto3 call of the command: AWS, a moto server at --endpoint-url, or the moto
    server a run on moto starts in this process (a connection it closed is no news from AWS)."""
    if getattr(args, "backend", None) != "moto":
        return "AWS"
    if getattr(args, "endpoint_url", None):
        return f"the moto server at {args.endpoint_url} (not AWS)"
    return "the run's moto server (its own, or the one `yafdp moto-server` runs; not AWS)"


def _stdout_closed() -> int:
    """Whoever read stdout stopped (``yafdp run ... | head -1``): nothing more is said, as by a program that
    SIGPIPE ends, and the exit code is 141 (128 + SIGPIPE), not 2: the input was not refused. stdout is pointed
    at /dev/null, as the Python documentation advises, so the interpreter's last flush meets no closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (a test's capture): nothing is flushed later
        pass
    return SIGPIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
