"""The ``yafdp`` command line: one sub-command per job, each a thin call into the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yafdp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def _catalog_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", metavar="DIR", default=None,
                        help="catalog folder with bus.json and services/ (default: the shipped data/)")


def _load(args):
    from yafdp.catalog import load_catalog

    return load_catalog(args.catalog)


def register_catalog(commands) -> None:
    parser = commands.add_parser("catalog", help="print the event catalog")
    _catalog_arg(parser)
    parser.add_argument("--format", choices=["table", "json", "mermaid", "asyncapi"], default="table")
    parser.set_defaults(run=run_catalog)


def run_catalog(args) -> int:
    catalog = _load(args)
    if args.format == "table":
        rows = [(e.name, e.service, e.source, e.kind, "yes" if e.terminal else "", e.origin,
                 ", ".join(s.service for s in catalog.consumers(e.name)) or "-")
                for e in catalog.events.values()]
        print(_text_table(("event", "producer", "source", "kind", "terminal", "origin", "consumers"), rows))
    elif args.format == "mermaid":
        from yafdp.graph import mermaid

        print(mermaid(catalog), end="")
    else:
        from yafdp.asyncapi import asyncapi_document

        doc = asyncapi_document(catalog) if args.format == "asyncapi" else _catalog_json(catalog)
        print(json.dumps(doc, indent=2))
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
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def register_lint(commands) -> None:
    parser = commands.add_parser("lint", help="check the catalog's design; exit 1 when it finds problems")
    _catalog_arg(parser)
    parser.set_defaults(run=run_lint)


def run_lint(args) -> int:
    from yafdp.lint import lint

    catalog = _load(args)
    findings = lint(catalog)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} problem(s) in {len(catalog.events)} events and {len(catalog.subscriptions)} rules"
          if findings else f"ok: {len(catalog.events)} events, {len(catalog.subscriptions)} rules, no problems")
    return 1 if findings else 0


def register_workbook(commands) -> None:
    parser = commands.add_parser("workbook", help="execute every notebook with papermill into a build folder (+ HTML)")
    parser.add_argument("--out", default="build", help="build folder (default: build)")
    parser.add_argument("--only", nargs="*", metavar="PREFIX", help="only the notebooks whose name starts so, e.g. 01 03")
    parser.add_argument("--backend", choices=["local", "moto", "aws"], default=None,
                        help="run the notebooks that take a backend parameter on this backend (default: theirs, local)")
    parser.set_defaults(run=run_workbook)


def run_workbook(args) -> int:
    from papermill.exceptions import PapermillExecutionError

    from yafdp.workbook import run_workbook as execute

    parameters = {"backend": args.backend} if args.backend else {}
    try:
        done = execute(Path(args.out), parameters, args.only)
    except PapermillExecutionError as exc:
        print(f"yafdp: a notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}", file=sys.stderr)
        return 1
    print(f"{len(done)} notebook(s) executed into {Path(args.out).resolve()}")
    return 0


COMMANDS: list = [register_catalog, register_lint, register_workbook]


def main(argv: list[str] | None = None) -> int:
    from yafdp.catalog import CatalogError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CatalogError as exc:
        print(f"yafdp: catalog error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
