"""The readers of finished runs only (``yafdp check``, ``trace``, ``fit-profile``, ``replay``): each refuses, in
the same words, a run that has not finished, saying how to finish it, rather than read a part of it as if whole.

A run has not finished when another process holds its folder (:class:`~yafdp.runs.folder.FolderLock`: a run or
resume in progress, whose memory store has no ``run.db`` yet), or when its ``run_info.status`` is still
``running`` or ``resuming`` (it was stopped before its end).
"""

from __future__ import annotations

import json
import re
from contextlib import closing
from pathlib import Path

from yafdp.errors import RunFolderError
from yafdp.runs import earlier, folder
from yafdp.runtime import rundb

UNFINISHED = ("running", "resuming")  # run_info.status of a run stopped before its end


class UnfinishedRunError(RunFolderError):
    """A run that has not finished: in progress in another process, or stopped before its end."""


def refuse_in_progress(where: Path, reader: str) -> None:
    """Raise :class:`UnfinishedRunError` when another process holds the run folder ``where`` (``reader``: what
    the command would do with the run, e.g. ``check it``), or when a replacing run was stopped with the run it
    replaces set aside and no ``run.db`` in place (:mod:`yafdp.runs.earlier`), saying how to put it back."""
    holder = folder.lock_holder(where)
    if holder is None:
        if earlier.kept(where) and not (Path(where) / "run.db").exists():
            raise UnfinishedRunError(f"{where} holds no run.db: a run replacing the one there was stopped as it set "
                                     f"that run aside or put it back (in {folder.EARLIER_RUN}*/); `yafdp resume --out "
                                     f"{where}` puts it back, then {reader}")
        return
    recorded = re.fullmatch(r"process (\d+) \((.*)\)", holder)
    who = f"pid {recorded[1]}: {recorded[2]}" if recorded else holder
    raise UnfinishedRunError(f"run in progress ({who}) in {where}: {reader} once it has finished")


def refuse_unfinished(where: Path, info: dict, reader: str) -> None:
    """Raise :class:`UnfinishedRunError` when ``info`` (``run_info`` of the run in folder ``where``) says the run
    was stopped before its end, saying how to finish it: ``yafdp resume`` for a file-store choreography run,
    else a new run."""
    status = info.get("status")
    if status not in UNFINISHED:
        return
    stopped = f"{where} holds an unfinished run (status {status!r}: it was stopped before its end)"
    if info.get("store") == "file" and info.get("style", "choreography") == "choreography":
        raise UnfinishedRunError(f"{stopped}: `yafdp resume --out {where}` finishes it, then {reader}")
    raise UnfinishedRunError(f"{stopped}, which cannot be resumed: run it again with `yafdp run --force --out {where}`")


def require_finished(path: str | Path, reader: str) -> None:
    """Refuse the run in ``path`` (a run folder or its ``run.db``) unless it has finished: in progress or stopped
    before its end is :class:`UnfinishedRunError`; no run, or one that cannot be read, the error of
    :func:`yafdp.runtime.rundb.open_run`. ``reader`` completes "check it once it has finished"."""
    where = rundb.run_db_path(path).parent
    refuse_in_progress(where, reader)  # first: a memory-store run in progress has no run.db until it ends
    with closing(rundb.open_run(path)) as db:
        info = rundb.get_info(db)
    refuse_unfinished(where, info, reader)


def read_summary_file(path: Path, recorded) -> tuple[dict | None, str | None]:
    """A finished run's ``summary.json`` at ``path`` and why it cannot stand: ``(document, problem)``, the document
    when it is a JSON object (else None), the problem in words that follow "summary.json" (``missing``, ``a folder,
    not a file``, ``not JSON (...)``, ``not a JSON object``, ``F differs from run_info.summary's``, F the first field
    that differs from ``recorded``, the summary the run wrote in ``run.db``, dotted) or None when it stands. ``yafdp check`` reports
    the problem, ``yafdp resume`` writes the file again from ``run.db``."""
    if not path.exists():
        return None, "missing"
    if path.is_dir():
        return None, "a folder, not a file"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    field = rundb.first_difference(recorded, document) if isinstance(recorded, dict) else None  # else check says so
    return document, None if field is None else f"{field} differs from run_info.summary's"
