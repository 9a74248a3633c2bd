"""The run a replacing run (``yafdp run --force``) replaces, kept until the new run has placed an order.

``--force`` asks for the run in ``--out`` to be replaced. A new run whose every order request is refused (an orders
file that is all wrong, a catalog change that refuses every request) is not a saga run (``yafdp run`` exits 1 for
it), and replacing a good run with it would lose that run for nothing. So the file store sets the earlier run's files
aside in ``<out>/.earlier-run/`` (:func:`set_aside`) instead of removing them, and when the new run finishes
(:func:`settle`, from :func:`yafdp.runs.lifecycle.finish`, a resume's included) they are removed if it placed an
order, or put back in place of the new run's files if it placed none. The memory store needs none of this: it
writes the folder only when it finishes, and then leaves an earlier run as it is when it placed nothing.

Each step is a rename, and a step a kill interrupts is completed or undone by the next writer of the folder
(:func:`recover`, called by ``yafdp run`` and ``yafdp resume`` once they hold its lock): a set-aside fills
``.earlier-run.partial/`` and renames it to ``.earlier-run/``; a putting-back renames ``.earlier-run/`` to
``.earlier-run.dropping/`` (the new run's files are being removed), then to ``.earlier-run.returning/`` (the earlier
run's files are going back). Only the holder of the folder's lock calls these.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from yafdp.interrupt import signals_held
from yafdp.runs import folder
from yafdp.runtime import rundb

# The earlier run; being filled by set_aside; the new run's files being removed; the earlier run's going back
EARLIER, PARTIAL, DROPPING, RETURNING = folder.EARLIER_RUN_STEPS
RUN_AND_COMPANIONS = (*folder.RUN_FILES, "run.db-wal", "run.db-shm", "run.db-journal")


def set_aside(out: Path) -> None:
    """Move the run files in ``out`` (:data:`~yafdp.runs.folder.RUN_FILES` and SQLite's companions of ``run.db``)
    into ``out/.earlier-run/``, in place of a run kept there before, unless they are those of a run that placed no
    order while a run is kept there already: those are removed, and the run kept stays the one to put back. (A
    replacing run stopped after placing orders is the run in ``out`` as ``check`` and ``resume`` see it: it is the
    one kept from then on.)"""
    out = Path(out)
    if not any((out / name).exists() for name in RUN_AND_COMPANIONS):
        return  # no run here: nothing to keep
    with signals_held():
        if (out / EARLIER).exists() and not placed_an_order(out / "run.db"):
            folder.remove(*(out / name for name in RUN_AND_COMPANIONS))
            return
        shutil.rmtree(out / PARTIAL, ignore_errors=True)
        (out / PARTIAL).mkdir()
        _move(out, out / PARTIAL, summary_first=True)
        shutil.rmtree(out / EARLIER, ignore_errors=True)
        os.rename(out / PARTIAL, out / EARLIER)
        folder.sync_folder(out)


def placed_an_order(db_path: Path) -> bool:
    """Whether the run in ``db_path`` placed an order (published an event: a placed order's start event is committed
    with it). A database that cannot be read counts as one that did: it is kept rather than removed."""
    if not db_path.is_file():
        return False
    try:
        db = rundb.connect_leaving_folder(db_path)
        try:
            return db.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0] == 1
        finally:
            db.close()
    except sqlite3.Error:
        return True


def placed_nothing(summary: dict) -> bool:
    """Whether the run ``summary`` describes placed none of its orders, every one refused: a run that does not
    replace an earlier one (and that ``yafdp run`` and ``yafdp resume`` exit 1 for). A run given no order at all
    is not one."""
    orders = summary.get("orders") or {}
    return orders.get("placed") == 0 and bool(orders.get("refused"))


def settle(out: Path, placed: bool) -> bool:
    """Once the run in ``out`` has finished (its ``run.db`` closed, its ``summary.json`` not yet written): drop the
    run kept in ``out/.earlier-run/`` if the new run ``placed`` an order; otherwise put it back in place of the new
    run's files. Returns whether an earlier run was put back (False when none was kept)."""
    out = Path(out)
    if not (out / EARLIER).is_dir():
        return False
    with signals_held():
        if placed:
            shutil.rmtree(out / EARLIER)
            return False
        os.rename(out / EARLIER, out / DROPPING)
        _put_back(out)
    return True


def recover(out: Path) -> str | None:
    """Complete or undo a step of :func:`set_aside` or :func:`settle` that a kill interrupted in ``out``: a run set
    aside (wholly or in part) while the new run's ``run.db`` was not yet in its place goes back (the new run never
    started); a putting-back goes on to its end. Returns what was done, in words, or None when nothing was."""
    out = Path(out)
    done = None
    with signals_held():
        if (out / PARTIAL).is_dir():
            _move(out / PARTIAL, out, summary_first=False)
            shutil.rmtree(out / PARTIAL)
            done = "a replacing run was stopped as it set the earlier run aside: the earlier run is put back"
        if (out / EARLIER).is_dir() and not (out / "run.db").exists():
            os.rename(out / EARLIER, out / RETURNING)
        if (out / DROPPING).is_dir() or (out / RETURNING).is_dir():
            _put_back(out)
            done = "a replacing run was stopped before its run.db was in place, or as it put the earlier run back: " \
                   "the earlier run is put back"
    return done


def kept(out: Path) -> bool:
    """Whether ``out`` keeps an earlier run, or a step of keeping one was interrupted there."""
    return any((Path(out) / name).is_dir() for name in folder.EARLIER_RUN_STEPS)


def _put_back(out: Path) -> None:
    if (out / DROPPING).is_dir():  # whatever run files are in out are the new run's
        folder.remove(*(out / name for name in RUN_AND_COMPANIONS))
        os.rename(out / DROPPING, out / RETURNING)
    _move(out / RETURNING, out, summary_first=False)
    shutil.rmtree(out / RETURNING)
    folder.sync_folder(out)


def _move(source: Path, into: Path, *, summary_first: bool) -> None:
    """Rename every run file (and companion) in ``source`` into ``into``: ``summary.json`` first when the run leaves
    ``source`` (never a summary beside another run's ``run.db``), last when it arrives (a reader meanwhile finds a run
    not finished, never a summary without its ``run.db``)."""
    others = [name for name in RUN_AND_COMPANIONS if name != "summary.json"]
    for name in (["summary.json", *others] if summary_first else [*others, "summary.json"]):
        if (source / name).exists():
            os.replace(source / name, into / name)
    folder.sync_folder(into)
