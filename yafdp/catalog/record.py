"""What a run keeps of the catalog it ran, and how a reader proves that catalog unchanged.

A run records its catalog twice: in ``run.db`` (``run_info.catalog``: the folder, the services it left out, the
SHA-256 of every file the catalog is made of, the documents added in memory and the package's handler modules it
used) and in the run folder's own copy, ``catalog.json`` (every file's text). ``yafdp check`` and ``yafdp resume``
decide what should have happened from a catalog they can prove is the one the run ran: the folder as it is now
agrees with the record, and the copy agrees with both. A difference is named file by file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yafdp.catalog.errors import CatalogError
from yafdp.catalog.loader import _check_cross_references, load_catalog, service_from_document
from yafdp.catalog.model import Catalog
from yafdp.quoting import excerpt
from yafdp.shipped import DATA_DIR

COPY_NAME = "catalog.json"  # the run folder's own copy of the catalog
COPY_KEYS = frozenset({"folder", "excluded", "files", "in_memory"})  # what copy() writes in it, and nothing else


def record(catalog: Catalog, excluded: tuple[str, ...] = ()) -> dict:
    """What ``run_info.catalog`` holds for a run of ``catalog`` (the folder's catalog less ``excluded``).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> kept = record(load_catalog())
    >>> sorted(kept["files"])[:3], kept["in_memory"], sorted(kept["package_handlers"])[0]
    (['bus.json', 'invariants.py', 'marketplace.json'], {}, 'yafdp/services/delivery.py')
    """
    folder = Path(catalog.path).resolve()
    files = {name: _sha256(path.read_bytes()) for name, path in catalog.code.files().items()}
    in_memory = {name: catalog.documents[name] for name in sorted(catalog.in_memory)}
    package = {}
    for service in catalog.services:
        if service in catalog.inline_handlers or catalog.code._own_file(service) is not None:
            continue
        spec = importlib.util.find_spec(f"yafdp.services.{service}")
        if spec is not None and spec.origin:
            package[f"yafdp/services/{service}.py"] = _sha256(Path(spec.origin).read_bytes())
    kept = {"folder": str(folder), "excluded": sorted(excluded), "files": files, "in_memory": in_memory,
            "package_handlers": dict(sorted(package.items()))}
    return {**kept, "sha256": _sha256(json.dumps(kept, sort_keys=True).encode())}


def copy(catalog: Catalog, recorded: dict) -> str:
    """The run folder's copy (``catalog.json``'s text) of the catalog ``recorded`` describes: every file's text
    (a file that is not UTF-8 text as ``{"base64": …}``) and the documents added in memory."""
    import base64

    files = {}
    for name, path in catalog.code.files().items():
        data = path.read_bytes()
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            files[name] = {"base64": base64.b64encode(data).decode()}
    document = {"folder": recorded["folder"], "excluded": recorded["excluded"], "files": files,
                "in_memory": recorded["in_memory"]}
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Proof:
    """How far a run's catalog is proven: the catalog to read the run with, where it came from (one line), and
    ``differences``: every way the folder, ``run.db``'s record and the run folder's copy disagree (empty: proven).
    ``code_trusted``: the catalog's Python is a catalog folder's (never the run folder's copy), so its hooks may run."""

    catalog: Catalog | None
    source: str
    differences: tuple[str, ...]
    code_trusted: bool

    @property
    def proven(self) -> bool:
        return not self.differences


def prove(recorded: dict | None, run_folder: Path, default_folder: str | Path | None = None, *,
          finished: bool = False, without_copy: bool = False) -> Proof:
    """Prove the catalog a run ``recorded`` (``run_info.catalog``) against its folder as it is now and the run
    folder's copy (``run_folder/catalog.json``); ``default_folder`` is the folder to read a run that records no
    catalog with (an older yafdp's: the one ``run_info.catalog_dir`` names).

    The catalog's documents are the first of these that agrees with the record: the folder, then the copy (a
    folder changed since the run is read as the run read it); with neither, the folder as it is. Its Python is
    always a folder's: the copy's is never imported (``code_trusted`` is False when no folder loads).
    A missing copy is a difference when the run ``finished`` (the excuse that its writer stopped before writing
    it is then not one a checker can take), not while it runs. ``without_copy``: the copy is read as missing (a
    resume writing again a copy that cannot be read proves the folder alone).
    """
    differences: list[str] = []
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        differences.append("the run records no catalog (made by an older yafdp, or its record was removed)")
        witness = _read_copy(run_folder / COPY_NAME, [])
        if witness is not None:  # the run folder's copy says which catalog it was: it stands in for the record
            recorded = {"folder": witness.get("folder"), "excluded": witness.get("excluded") or [],
                        "in_memory": witness.get("in_memory") or {},
                        "files": {n: _sha256(_bytes(t)) for n, t in witness.get("files", {}).items()}}
        else:
            recorded = {"folder": str(Path(default_folder).resolve()) if default_folder else None, "files": None}
    else:
        kept = {k: recorded.get(k) for k in ("folder", "excluded", "files", "in_memory", "package_handlers")}
        if recorded.get("sha256") != _sha256(json.dumps(kept, sort_keys=True).encode()):
            differences.append("run.db's record of the catalog does not match its own hash")
    folder = Path(recorded["folder"]) if recorded.get("folder") else None
    excluded = tuple(recorded.get("excluded") or ())
    in_memory = recorded.get("in_memory") or {}
    # A copy that is missing is no difference by itself: a writer stopped between run.db and its copy leaves
    # none (never another run's); the folder must then prove the catalog alone.
    missing_copy = recorded["files"] is not None and (without_copy or not (run_folder / COPY_NAME).exists())
    copy_document = (_read_copy(run_folder / COPY_NAME, differences,
                                f": `yafdp resume --out {run_folder}` writes it again from the catalog folder, once "
                                "proven" if finished else "")
                     if recorded["files"] is not None and not missing_copy else None)
    copy_agrees = False
    if copy_document is not None:
        copied = {name: _sha256(_bytes(text)) for name, text in copy_document.get("files", {}).items()}
        copy_differences = [f"{COPY_NAME}: {d}" for d in compare(recorded["files"], copied)]
        copy_differences += [f"{COPY_NAME}: its {key} differs from run.db's record" for key in
                             ("folder", "excluded", "in_memory") if copy_document.get(key) != recorded.get(key)]
        copy_differences += [f"{COPY_NAME}: {excerpt(key)} added (a copy holds {', '.join(sorted(COPY_KEYS))})"
                             for key in sorted(copy_document.keys() - COPY_KEYS, key=str)]
        differences += copy_differences
        copy_agrees = not copy_differences
    try:
        from_folder = load_catalog(folder).without(*excluded) if folder is not None else load_catalog()
    except CatalogError as exc:
        from_folder = None
        differences.append(f"{folder}: the catalog folder the run names does not load ({exc})")
    folder_agrees = False
    if from_folder is not None and recorded["files"] is not None:
        now = {name: _sha256(path.read_bytes()) for name, path in from_folder.code.files().items()}
        folder_differences = [f"{from_folder.path}: {d}" for d in compare(recorded["files"], now)]
        for name, digest in (recorded.get("package_handlers") or {}).items():
            here = Path(__file__).resolve().parents[2] / name
            if not here.is_file() or _sha256(here.read_bytes()) != digest:
                folder_differences.append(f"{name}: the package's handler module changed since the run")
        differences += folder_differences
        folder_agrees = not folder_differences
    described = _describe(folder, excluded, in_memory)
    if missing_copy:
        if finished:
            differences.append(f"{run_folder / COPY_NAME}: the run folder's copy of the catalog is missing from a "
                               f"finished run (`yafdp resume --out {run_folder}` writes it again from the folder, "
                               "once proven)")
        elif folder_agrees:
            described += f" (the run folder has no {COPY_NAME}: its writer stopped before writing it)"
        else:
            differences.append(f"{run_folder / COPY_NAME}: the run folder's copy of the catalog is missing")
    try:
        if from_folder is not None and (folder_agrees or not copy_agrees):
            catalog, source = from_folder, described
        elif copy_agrees:
            catalog = _load_copy(copy_document, excluded, from_folder.path if from_folder is not None else None)
            source = f"the run's own copy ({run_folder / COPY_NAME}) of {described}"
        else:
            return Proof(None, described, tuple(differences), False)
        catalog = _with_in_memory(catalog, in_memory)
    except CatalogError as exc:
        return Proof(None, described, (*differences, f"the run's catalog does not load: {exc}"), False)
    return Proof(catalog, source, tuple(differences), from_folder is not None)


def compare(recorded: dict, now: dict) -> list[str]:
    """How the files ``now`` (name → SHA-256) differ from ``recorded``, one line per file, in name order.

    Examples
    --------
    >>> compare({"a.json": "1", "b.py": "2"}, {"a.json": "1", "b.py": "3", "c.py": "4"})
    ['b.py changed', 'c.py added']
    """
    lines = []
    for name in sorted(recorded.keys() | now.keys()):
        if name not in now:
            lines.append(f"{name} removed")
        elif name not in recorded:
            lines.append(f"{name} added")
        elif recorded[name] != now[name]:
            lines.append(f"{name} changed")
    return lines


def folder_files(folder: Path | str | None) -> dict[str, str] | None:
    """The SHA-256 of every file the catalog in ``folder`` is made of, now; None when it does not load."""
    try:
        return {name: _sha256(path.read_bytes()) for name, path in load_catalog(folder).code.files().items()}
    except (CatalogError, OSError):
        return None


def _describe(folder: Path | None, excluded: tuple[str, ...], in_memory: dict) -> str:
    # The shipped folder is named as such, not by this machine's path (a chapter's copy shows it to its readers).
    shipped = folder is None or Path(folder).resolve() == DATA_DIR.resolve()
    text = "the shipped catalog (data/)" if shipped else str(folder)
    if excluded:
        text += f" without {', '.join(excluded)}"
    if in_memory:
        names = ", ".join(sorted(str(doc.get("service", "?")) for doc in in_memory.values()))
        text += f", with {names} built in memory (the run's own record of it: nothing outside the run to compare)"
    return text


def copy_problem(path: Path) -> str | None:
    """Why the run folder's copy of its catalog at ``path`` cannot stand (missing, unreadable, not a copy of a
    catalog), in words naming it; None when it can be read as one (whether it agrees with the run is
    :func:`prove`'s)."""
    problems: list[str] = []
    _read_copy(Path(path), problems)
    return problems[0] if problems else None


def _read_copy(path: Path, differences: list[str], repair: str = "") -> dict | None:
    """The run folder's copy of its catalog, or None with why in ``differences`` (``repair``: how to write it
    again, said after a copy that cannot be read)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        differences.append(f"{path}: the run folder's copy of the catalog is missing")
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        differences.append(f"{path}: cannot be read ({exc}){repair}")
        return None
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        differences.append(f"{path}: not a copy of a catalog{repair}")
        return None
    return document


def _bytes(text: Any) -> bytes:
    import base64

    if isinstance(text, dict):
        return base64.b64decode(text.get("base64", ""))
    return str(text).encode("utf-8")


def _load_copy(document: dict, excluded: tuple[str, ...], code_folder: Path | None) -> Catalog:
    """The catalog of a copy, read as data: its documents written to a temporary folder and loaded, nothing of its
    Python; its code is ``code_folder``'s (the catalog folder), when there is one."""
    folder = Path(tempfile.mkdtemp(prefix="yafdp-catalog-copy-"))
    try:
        for name, text in document.get("files", {}).items():
            target = (folder / name).resolve()
            if not target.is_relative_to(folder.resolve()) or not name.endswith(".json"):
                continue  # only the documents: a name that points outside, or code, is not written
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_bytes(text))
        catalog = load_catalog(folder).without(*excluded)
        return dataclasses.replace(catalog, path=code_folder) if code_folder is not None else catalog
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _with_in_memory(catalog: Catalog, documents: dict) -> Catalog:
    """``catalog`` with the service documents a run added in memory (as data: without their handlers)."""
    services, events = dict(catalog.services), dict(catalog.events)
    for name, document in sorted(documents.items()):
        service, service_events = service_from_document(f"<in memory: {name}>", document, catalog.bus)
        services[service.name] = service
        events.update(service_events)
    if not documents:
        return catalog
    _check_cross_references(services, events, catalog.bus, "<in memory>")
    return Catalog(catalog.path, catalog.bus, MappingProxyType(services), MappingProxyType(events),
                   MappingProxyType({**catalog.documents, **documents}), catalog.in_memory | set(documents))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
