"""The rules of a run folder: what ``--out`` may be, one writer at a time, and files replaced whole or not at all.

- ``--out`` must be a folder (or not exist yet, under folders), not a catalog folder (``bus.json``, ``services/``);
  one that holds a run (``run.db`` or ``summary.json``) is refused unless the caller says to replace it
  (``yafdp run --force``).
- One process writes a run folder at a time: :class:`FolderLock` holds ``.yafdp.lock`` (with the ``filelock``
  library) for the whole run or resume; another one is refused, naming the process that holds it. The one that
  takes it removes the temporary files a writer killed before it could clean up left there.
- :func:`replace_atomically` puts a finished file in place with a rename from a temporary file in the same
  folder, flushed to disk first, so a kill at any moment leaves the old file or the new one, never half of one.
- Another command's output file (:func:`save_output`, e.g. a fitted profile) follows the same rules: an existing
  file is replaced only when the caller says so (``--force``), a run folder's own files never, and into a run
  folder only while holding its lock.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import sqlite3
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable, TextIO, TypeVar

from filelock import FileLock, Timeout

from yafdp.errors import RefusedError, RunFolderError
from yafdp.reading import LOCK_FILE_BYTES, TooLargeError, read_bytes

T = TypeVar("T")
LOCK_NAME = ".yafdp.lock"
RUN_FILES = ("run.db", "summary.json", "catalog.json")  # catalog.json: the run's own copy of its catalog
TEMPORARY_SUFFIX = ".tmp"
# Where a replacing run keeps the run it replaces until it has placed an order, and the folders of each step of
# keeping or putting it back (yafdp.runs.earlier).
EARLIER_RUN = ".earlier-run"
EARLIER_RUN_STEPS = tuple(EARLIER_RUN + step for step in ("", ".partial", ".dropping", ".returning"))
CATALOG_MARKS = ("bus.json", "services")  # what a catalog folder holds (yafdp.catalog.loader): never a run's place
CATALOG_READS = ("services", "latency")  # the catalog folder's folders its loader reads every file of
# The names temporary_beside gives a run file's temporary (mkstemp: '.', the file's name, '.', 8 of its letters,
# the suffix), and the journal SQLite keeps beside one being written as a database.
# The files SQLite keeps beside a run's run.db while it is open or after a crash (its write-ahead log, its shared
# memory index, its rollback journal): they are the run's data too.
SQLITE_COMPANION = re.compile(r"run\.db-(?:wal|shm|journal)")
STALE_TEMPORARY = re.compile(r"\.(?:%s)\.[a-z0-9_]{8}%s(?:-journal|-wal|-shm)?"
                             % ("|".join(map(re.escape, RUN_FILES)), re.escape(TEMPORARY_SUFFIX)))


# A write that found no room: a full disk, a quota, or a file that may grow no more (RLIMIT_FSIZE). SQLite says
# "database or disk is full" (SQLITE_FULL) of the first and "disk I/O error" (SQLITE_IOERR_WRITE) of the others.
NO_ROOM_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
NO_ROOM_SQLITE = ("database or disk is full", "disk I/O error")


class NoRoomError(RunFolderError):
    """A run file could not be written for want of room; the message names it and says what was kept."""


def no_room(exc: BaseException) -> str | None:
    """What ``exc`` says if it is a write that found no room (see :data:`NO_ROOM_ERRNOS`), else None."""
    if isinstance(exc, OSError) and exc.errno in NO_ROOM_ERRNOS:
        return exc.strerror or os.strerror(exc.errno)
    if isinstance(exc, sqlite3.OperationalError) and str(exc) in NO_ROOM_SQLITE:
        return str(exc)
    return None


@contextmanager
def room_to_write(path: Path, kept: str):
    """Say a write that found no room as :class:`NoRoomError`: one line naming ``path`` and saying ``kept`` (what
    the folder holds now); any other failure goes on as it is."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        why = no_room(exc)
        if why is None:
            raise
        raise NoRoomError(f"no room to write {path} ({why}: a full disk, a quota or a file-size limit); {kept}") from None


class Interrupted(KeyboardInterrupt):
    """A run or resume stopped by SIGINT or SIGTERM; ``message`` says what was kept and what to do."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a dangling symbolic link counts: nothing can be made there)."""
    return next((place for place in (path, *path.parents) if place.exists() or place.is_symlink()), Path("."))


def check_out(out: Path, option: str = "--out", purpose: str = "the run") -> Path:
    """``out`` if it can be a run folder: a folder, or a path whose first existing ancestor is a folder, and not a
    catalog folder (one holding :data:`CATALOG_MARKS` and no run) nor a folder its loader reads (:data:`CATALOG_READS`).
    ``purpose`` is what the folder is for, as the refusal says it ("choose a folder for the run").

    Raises :class:`~yafdp.errors.RefusedError` naming the file in the way.
    """
    out = Path(out)
    place = _first_existing(out)
    if not place.is_dir():
        where = "is a file" if place == out else f"is under {place}, which is a file"
        raise RefusedError(f"{option} {out} {where}, not a folder: choose a folder for {purpose}")
    for name in RUN_FILES:  # what the run will replace must be a file (or absent), or saving fails at the end
        if (out / name).exists() and not (out / name).is_file():
            raise RefusedError(f"cannot save the run: {out / name} is a folder; choose another {option} or remove it")
    for name in EARLIER_RUN_STEPS:  # and where it keeps the run it replaces must be a folder (or absent)
        if (out / name).exists() and not (out / name).is_dir():
            raise RefusedError(f"cannot save the run: {out / name} is not a folder, and a run keeps the run it "
                               f"replaces there; choose another {option} or remove it")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise RefusedError(f"cannot save the run: cannot write into {out} ({option})")
    if not holds_run(out):
        inside = _catalog_part(out)
        if inside is not None:
            raise RefusedError(f"{option} {out} is {inside}: the files written there would sit among the catalog's "
                               f"and be read as part of it; choose another {option}")
    return out


def _catalog_part(out: Path) -> str | None:
    """What ``out`` is of a catalog folder, if anything: the catalog folder itself (it holds :data:`CATALOG_MARKS`),
    or a folder inside one the catalog loader reads (its ``services/``, ``latency/``, or deeper), else None."""
    if any((out / name).exists() for name in CATALOG_MARKS):
        return "a catalog folder (it holds bus.json or services/)"
    for part in (out, *out.parents):
        if part.name in CATALOG_READS and (part.parent / "bus.json").is_file():
            return f"inside the catalog folder {part.parent} (its {part.name}/)"
    return None


def holds_run(out: Path) -> bool:
    """Whether ``out`` holds (part of) a run."""
    return any((Path(out) / name).exists() for name in RUN_FILES)


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds (part of) a run or was ever run in (its lock file, which a run in progress whose
    ``run.db`` is not written yet already holds)."""
    return holds_run(folder) or (Path(folder) / LOCK_NAME).exists()


def check_output_file(path: Path, option: str, force: bool, *, new_folder: bool = False) -> Path:
    """``path`` if a command may write its output file (a profile, say) there: in a folder that exists (a typo
    in a path makes no folder anywhere; ``new_folder``: the command makes that one folder, in one that exists),
    not a folder, not under a file, not a run folder's own file (``run.db`` and SQLite's files beside it,
    ``summary.json``, ``catalog.json``, the lock or a temporary of theirs, whatever ``force`` says), not a symbolic
    link, a device, a pipe or a socket (``--force`` would replace it with a file; whatever ``force`` says), and not
    an existing file unless ``force``.

    Raises :class:`~yafdp.errors.RefusedError` naming ``option`` and what is in the way.
    """
    path = Path(path)
    place = _first_existing(path)
    if place == path and path.is_dir():
        raise RefusedError(f"{option} {path} is a folder: give the file to write")
    if not place.is_dir() and place != path:
        raise RefusedError(f"{option} {path} is under {place}, which is a file: choose another {option}")
    missing = path.parent.parent if new_folder else path.parent
    if not missing.is_dir():
        raise RefusedError(f"{option} {path}: no folder {missing}: create it first, or choose another {option}")
    if path.name in (*RUN_FILES, LOCK_NAME) or STALE_TEMPORARY.fullmatch(path.name) or SQLITE_COMPANION.fullmatch(path.name):
        raise RefusedError(f"{option} {path}: {path.name} is a run folder's own file, never another command's "
                           f"output: choose another {option}")
    if path.is_symlink():  # --force would replace the link, not write where it points
        raise RefusedError(f"{option} {path} is a symbolic link: give the file it points to, or choose another "
                           f"{option}")
    if path.exists() and not path.is_file():  # a device, a pipe, a socket: --force would replace it with a file
        raise RefusedError(f"{option} {path} is not a regular file (a device, a pipe or a socket): choose another "
                           f"{option}")
    if path.exists() and not force:
        raise RefusedError(f"{option} {path} exists: pass --force to replace it, or choose another {option}")
    return path


def save_output(path: Path, write: str | Callable[[TextIO], T], *, option: str, force: bool, command: str,
                check: Callable[[Path], object] | None = None) -> T | None:
    """Write a command's output file ``path`` (after :func:`check_output_file`) whole or not at all, under the
    rules of a run folder: in a run folder (:func:`is_run_folder`) only while holding its :class:`FolderLock`
    (refused, naming the holder, while a run or another writer has it), and the existing file checked again
    under the lock. ``write`` is the text, or writes it to a text stream (and what it returns is returned).
    ``check(temporary)`` may refuse what was written before it replaces anything.
    """
    path = check_output_file(path, option, force)
    lock = FolderLock(path.parent, command) if is_run_folder(path.parent) else nullcontext()
    with lock:
        check_output_file(path, option, force)  # another writer may have made it meanwhile
        temporary = temporary_beside(path)
        try:
            with room_to_write(path, f"{path} is as it was"), open(temporary, "w", encoding="utf-8") as stream:
                if isinstance(write, str):
                    stream.write(write)
                    result = None
                else:
                    result = write(stream)
            if check is not None:
                check(temporary)
            replace_atomically(path, temporary)
        finally:
            remove_temporary(temporary)
    return result


def replace_run_db(out: Path, write: Callable[[Path], object], kept: str, also: tuple[str, ...] = (),
                   set_aside: Callable[[Path], None] | None = None) -> None:
    """Put a new ``run.db`` in ``out``: ``write(temporary)`` makes it beside the old one, then the old run's
    files go (its summary first, so no summary ever describes another run's ``run.db``, then the files named in
    ``also``), or ``set_aside(out)`` moves them away, and the new one is renamed into place. The caller holds
    ``out``'s :class:`FolderLock`. A write that finds no room is said as :class:`NoRoomError` with ``kept``, and
    the folder holds what it held before."""
    building = temporary_beside(Path(out) / "run.db")
    try:
        with room_to_write(Path(out) / "run.db", kept):
            write(building)
        if set_aside is not None:
            set_aside(Path(out))
        else:
            remove(Path(out) / "summary.json", *(Path(out) / name for name in also), Path(out) / "run.db-wal",
                   Path(out) / "run.db-shm")
        replace_atomically(Path(out) / "run.db", building)
    finally:
        remove_temporary(building)


def refuse_existing(out: Path) -> None:
    """Refuse to replace the run in ``out`` (the caller did not ask to)."""
    found = [name for name in RUN_FILES if (Path(out) / name).exists()]
    raise RunFolderError(f"{out} already holds a run ({' and '.join(found)}): pass --force to replace it, "
                         "or choose another --out")


class FolderLock:
    """The one-writer lock of a run folder, held from :meth:`acquire` to :meth:`release` (or the process's end).

    The lock file records who holds it, so a second writer is told which process to wait for. A writer that took
    the lock but did not start (refused, or stopped, before it wrote a run file) lets go with ``release(undo=True)``:
    the lock file and the folders :meth:`acquire` made are removed again, so the folder is as it was.
    """

    def __init__(self, out: Path, what: str):
        self.out, self.what = Path(out), what
        self._lock: FileLock | None = None
        self._made_folders: list[Path] = []
        self._made_lock_file = False

    def acquire(self) -> "FolderLock":
        """Take the folder (created if need be) or raise :class:`~yafdp.errors.RunFolderError` naming who has it
        (then, or if stopped meanwhile, the folders it made are removed again)."""
        path = self.out / LOCK_NAME
        self._made_folders = list(itertools.takewhile(lambda place: not (place.exists() or place.is_symlink()),
                                                      (self.out, *self.out.parents)))
        self._made_lock_file = not (path.exists() or path.is_symlink())
        holder = f"process {os.getpid()} ({self.what}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"

        def record_holder(fd: int) -> None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder.encode(), 0)

        try:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(path), blocking=False, on_acquired=record_holder)
            try:
                self._lock.acquire()
            except Timeout:
                raise RunFolderError(f"{self.out} is in use by {_recorded_holder(path)}: wait for it to finish "
                                     "(or stop it) before writing there") from None
            remove_stale_temporaries(self.out)
        except BaseException:
            self.release(undo=True)
            raise
        return self

    def release(self, undo: bool = False) -> None:
        """Let go of the folder; its lock file no longer names a holder. ``undo``: the writer did not start, so
        the lock file (if :meth:`acquire` made it) and the folders it made (those still empty) are removed.

        The lock file is removed while it is still held: filelock's Unix lock checks, once it has the lock of a
        file, that the file is still linked (its ``st_nlink``), so a writer that opened it just before is refused
        as if the folder were in use, never given the lock of a file no one else can see."""
        lock, self._lock = self._lock, None
        if lock is not None and lock.is_locked:
            try:
                if undo and self._made_lock_file:
                    (self.out / LOCK_NAME).unlink(missing_ok=True)
                else:
                    os.truncate(self.out / LOCK_NAME, 0)
            except OSError:  # the record is only read while the lock is held: a stale one misleads nobody
                pass
            lock.release()
        if undo:
            for made in self._made_folders:  # the deepest first; one that holds anything now is kept
                try:
                    made.rmdir()
                except OSError:
                    break
            self._made_folders = []

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, exc_type, *exc) -> None:
        self.release(undo=exc_type is not None)  # refused or stopped: what the lock made goes (never a file written)


def lock_holder(out: Path) -> str | None:
    """Who holds ``out``'s one-writer lock now, as the holder recorded itself (``process 123 (yafdp run, since
    …)``), or None when no process does: a process that ended, even by SIGKILL, let go of it with its files.

    Creates nothing (a folder without ``.yafdp.lock`` was never run in) and holds the lock only for the instant
    of the probe; a lock that cannot be probed here (a folder this user cannot write) counts as not held.
    """
    path = Path(out) / LOCK_NAME
    if not path.is_file():
        return None
    probe = FileLock(str(path), blocking=False)
    try:
        probe.acquire()
    except Timeout:
        return _recorded_holder(path)
    except OSError:
        return None
    probe.release()
    return None


def _recorded_holder(path: Path) -> str:
    try:
        return read_bytes(path, LOCK_FILE_BYTES, "a lock file").decode("utf-8", "replace").strip() or "another process"
    except (OSError, TooLargeError):
        return "another process"


def temporary_beside(path: Path) -> Path:
    """A new, empty temporary file in ``path``'s folder (so a rename onto ``path`` is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{Path(path).name}.", suffix=TEMPORARY_SUFFIX, dir=Path(path).parent)
    try:  # mkstemp makes it 0600; the file it becomes gets the mode any new file gets here (0644 under umask 022)
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(name)


def remove_temporary(temporary: Path) -> None:
    """Remove a temporary of :func:`temporary_beside` (if still there) and the journal SQLite kept beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{temporary}{suffix}").unlink(missing_ok=True)


def _umask() -> int:
    """This process's umask, read without changing it where Linux shows it (setting it, even back, races with
    other threads creating files); elsewhere read by setting it and back."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def remove_stale_temporaries(out: Path) -> list[str]:
    """Remove from ``out`` the temporaries of its run files (:data:`STALE_TEMPORARY`, nothing else, and nothing in
    a subfolder) that a writer killed before it renamed or removed them left behind; returns their names.

    Only the holder of ``out``'s :class:`FolderLock` may call it (acquiring it does): every writer of a run folder
    holds the lock while its temporaries exist, so what is found then is nobody's.
    """
    stale = [entry.name for entry in os.scandir(out)
             if STALE_TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)]
    remove(*(Path(out) / name for name in stale))
    return stale


def replace_atomically(path: Path, temporary: Path) -> None:
    """Put the finished ``temporary`` (beside ``path``) in place of ``path``: flushed to disk, then renamed."""
    with open(temporary, "rb+") as written:
        os.fsync(written.fileno())
    os.replace(temporary, path)
    sync_folder(Path(path).parent)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    temporary = temporary_beside(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        replace_atomically(path, temporary)
    finally:
        remove_temporary(temporary)


def remove(*paths: Path) -> None:
    """Remove files (those that exist), then make the removal durable."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
    if paths:
        sync_folder(Path(paths[0]).parent)


def sync_folder(folder: Path) -> None:
    """Make the renames and removals in ``folder`` durable (an fsync of the folder itself)."""
    if sys.platform == "win32":  # a folder cannot be opened for fsync there; the rename is what it is
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
