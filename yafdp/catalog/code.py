"""The Python a catalog folder carries: its handlers and its hooks. Loading them runs them: a catalog folder is code.

One rule finds a handler: the functions given in memory (:func:`yafdp.catalog.inline.add_service`), then the
catalog folder's ``services/<service>.py`` (or the package ``services/<service>/``), then the package's shipped
handlers, ``yafdp/services/<service>.py``. A folder's modules are imported under a private package of their own
(one per folder and content), so two catalogs never share a module and a handler may import its neighbours
relatively (``from . import common``).

Two hooks, both optional, sit beside ``bus.json``:

- ``saga.py``, what a run needs: ``FILES`` (the data files it reads, shipped in the Lambda package and recorded
  with each run), ``world(folder)`` (what handlers see as ``uow.world``), ``OUTCOME_RATES`` (the business outcome
  rates its workload takes, with their defaults) and ``requests(world, *, count, seed, rates, arrival_rate)``
  (yields ``(at, request, expected)``: when a request is sent, in seconds; the request an entry point takes; what
  its saga should end as), and ``summary(db)`` (facts added to ``summary.json``).
- ``invariants.py``, what the checker adds: ``INVARIANTS``, functions ``invariant(run) -> Invariant`` (see
  :mod:`yafdp.analysis.check`).

A handler that does not import, raises when imported, is missing, is not a function of the right signature, is an
async or generator function (calling it would not run it), or whose module would shadow one the project imports is a :class:`~yafdp.catalog.model.CatalogError` naming the file
and line.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from yafdp.catalog.errors import CatalogError

PACKAGE_HANDLERS = "yafdp.services"  # the package's shipped handlers, found after the catalog folder's
HOOKS = ("saga", "invariants")
# Modules a handler module must not be named after: where its folder is on the import path (a script or a notebook
# run from services/, Lambda's task root), it would be imported in their place. The standard library, yafdp, and
# what the Lambda package carries or the Lambda runtime provides.
PROJECT_MODULES = frozenset(sys.stdlib_module_names) | {"yafdp", "fastjsonschema", "boto3", "botocore"}


@dataclass(frozen=True)
class MissingHandler:
    """A handler the catalog names and nobody has written yet: where it is named, and where to write it."""

    service: str
    name: str
    file: str  # the service document that names it
    key: str  # e.g. subscriptions[0].handler
    write_in: str  # where the function would be found first

    def __str__(self) -> str:
        signature = "payload, uow" if self.key.startswith("entrypoints") else "event, uow"
        return (f"{self.file}: {self.key}: handler {self.name!r} is not written yet: "
                f"write def {self.name}({signature}) in {self.write_in}")


class MissingHandlersError(CatalogError):
    """A catalog whose handlers are not all written, refused by a run: one line per missing handler."""

    def __init__(self, missing: list[MissingHandler]):
        self.missing = missing
        self.lines = [str(m) for m in missing]
        first = missing[0]
        super().__init__(first.file, first.key, str(first).split(f"{first.key}: ", 1)[1])

    def __str__(self) -> str:
        return "\n".join(self.lines)


class CatalogCode:
    """The Python of one catalog (a :class:`~yafdp.catalog.model.Catalog`, which makes this as its ``code``):
    its handlers and hooks, imported when first asked for."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.folder = Path(catalog.path)
        self._package: str | None = None

    # ---------------------------------------------------------------- handlers

    def handler(self, service: str, name: str, named_by: str = "") -> Callable:
        """The function ``name`` of ``service``'s handlers (see the module's resolution rule), checked: a
        callable taking ``(event, uow)``. ``named_by`` says where the catalog names it, for the error message.

        Raises :class:`CatalogError` naming the file (and line) when it is missing or broken."""
        inline = self.catalog.inline_handlers.get(service)
        if inline is not None:
            if name not in inline:
                raise CatalogError(f"<in memory: service {service!r}>", "handlers",
                                   f"no function given for handler {name!r}")
            return _checked(inline[name], f"<in memory: service {service!r}>", name)
        module, where = self.module(service)
        if module is None:
            raise CatalogError(self._expected_file(service), "", f"service {service!r} has no handler module: "
                                                                 f"write its handlers in {self._expected_file(service)}")
        function = getattr(module, name, None)
        if function is None:
            raise CatalogError(where, "", f"has no function {name!r} (named by {named_by or f'the catalog for service {service!r}'})")
        return _checked(function, where, name)

    def module(self, service: str) -> tuple[types.ModuleType | None, str]:
        """The module holding ``service``'s handlers and its file: the catalog folder's, else the package's;
        ``(None, "")`` when neither has one."""
        own = self._own_file(service)
        if own is not None:
            _refuse_shadowing(own, service)
            return self._import(f"{self._private_package()}.services.{service}", own), str(own)
        qualified = f"{PACKAGE_HANDLERS}.{service}"
        spec = importlib.util.find_spec(qualified)
        if spec is None or spec.origin is None:
            return None, ""
        return self._import(qualified, Path(spec.origin)), spec.origin

    def missing(self) -> list[MissingHandler]:
        """The handlers and entry points of the services that have no handler module yet (design before code).

        A service whose module exists has every handler the catalog names checked: a module that does not
        import, lacks a named function or has one of the wrong signature raises :class:`CatalogError`."""
        missing = []
        for service in self.catalog.services.values():
            named = [(f"subscriptions[{i}].handler", sub.handler) for i, sub in enumerate(service.subscriptions)]
            named += [(f"entrypoints[{i}].name", point.name) for i, point in enumerate(service.entrypoints)]
            if service.name not in self.catalog.inline_handlers and self.module(service.name)[0] is None:
                write_in = str(self._expected_file(service.name))
                missing += [MissingHandler(service.name, name, service.file, key, write_in) for key, name in named]
                continue
            for key, name in named:
                self.handler(service.name, name, named_by=f"{service.file} {key}")
        return missing

    def check(self, *, allow_missing: bool = False) -> list[MissingHandler]:
        """Check every handler the catalog names; return those not written yet when ``allow_missing`` (lint,
        plan and catalog work on a design whose code does not exist yet), else refuse them.

        Raises :class:`CatalogError` for a broken handler, :class:`MissingHandlersError` (one line per handler)
        for missing ones unless ``allow_missing``."""
        missing = self.missing()
        self.hook("saga")
        self.hook("invariants")
        if missing and not allow_missing:
            raise MissingHandlersError(missing)
        return missing

    # ---------------------------------------------------------------- hooks

    def hook(self, name: str) -> types.ModuleType | None:
        """The hook module ``name`` (``saga`` or ``invariants``) of the catalog's folder, or None when it has none.

        Raises :class:`CatalogError` naming the file and line when it does not import, or has a wrong shape."""
        file = self.folder / f"{name}.py"
        if name not in HOOKS or not file.is_file():
            return None
        module = self._import(f"{self._private_package()}.{name}", file)
        _check_hook(module, file, name)
        return module

    def world(self) -> Any:
        """What the catalog's handlers see as ``uow.world``: its ``saga.py``'s ``world(folder)``, or None."""
        hook = self.hook("saga")
        return hook.world(self.folder) if hook is not None and hasattr(hook, "world") else None

    def files(self) -> dict[str, Path]:
        """Every file of the catalog folder that the catalog is made of, ``{name relative to the folder: path}``:
        ``bus.json``, ``services/<name>.json``, the handlers in ``services/`` (modules and packages), the hooks and
        the data files ``saga.py``'s ``FILES`` names. Nothing else of the folder (no hidden files, no caches)."""
        found = {"bus.json": self.folder / "bus.json"}
        services = self.folder / "services"
        for path in sorted(services.glob("*.json")):
            if not path.name.startswith("."):  # what the loader reads, and nothing it does not
                found[f"services/{path.name}"] = path
        for path in sorted(services.rglob("*.py")):
            relative = path.relative_to(self.folder)
            if not any(part.startswith((".", "__pycache__")) for part in relative.parts):
                found[relative.as_posix()] = path
        for name in HOOKS:
            if (self.folder / f"{name}.py").is_file():
                found[f"{name}.py"] = self.folder / f"{name}.py"
        hook = self.hook("saga")
        for name in getattr(hook, "FILES", ()):
            found[name] = self.folder / name
        return {name: path for name, path in sorted(found.items()) if path.is_file()}

    # ---------------------------------------------------------------- importing

    def _own_file(self, service: str) -> Path | None:
        services = self.folder / "services"
        for candidate in (services / service / "__init__.py", services / f"{service}.py"):
            if candidate.is_file():
                return candidate
        return None

    def _expected_file(self, service: str) -> Path:
        return self.folder / "services" / f"{service}.py"

    def _private_package(self) -> str:
        """The name the folder's modules are imported under: one per folder and content, so that an edited
        handler is imported afresh by the next catalog loaded, and two catalogs never share a module."""
        if self._package is None:
            digest = hashlib.sha256(str(self.folder.resolve()).encode())
            for path in sorted(self.folder.rglob("*.py")):
                if "__pycache__" not in path.parts:
                    digest.update(path.relative_to(self.folder).as_posix().encode() + b"\0" + path.read_bytes())
            name = f"_yafdp_catalog_{digest.hexdigest()[:16]}"
            if name not in sys.modules:
                package = types.ModuleType(name, f"The Python of the catalog folder {self.folder}")
                package.__path__ = [str(self.folder)]
                package.__package__ = name
                sys.modules[name] = package
            self._package = name
        return self._package

    def _import(self, qualified: str, file: Path) -> types.ModuleType:
        try:
            return importlib.import_module(qualified)
        except SyntaxError as exc:
            raise CatalogError(exc.filename or file, f"line {exc.lineno}", f"does not compile: {exc.msg}") from None
        except (Exception, SystemExit) as exc:  # ImportError included: one line naming the file and the line
            where, line = _raised_at(exc, file, self.folder)
            what = "does not import" if isinstance(exc, ImportError) else f"raises {type(exc).__name__} when imported"
            raise CatalogError(where, f"line {line}" if line else "", f"{what}: {exc}") from None


def _checked(function: Any, where: str | Path, name: str) -> Callable:
    """``function`` if it can be called as a handler ``(event, uow)``; :class:`CatalogError` naming its line if not."""
    line = getattr(getattr(function, "__code__", None), "co_firstlineno", None)
    key = f"line {line}" if line else ""
    if not callable(function):
        raise CatalogError(where, key, f"{name!r} is a {type(function).__name__}, not a function")
    # Called, an async function or a generator function returns a coroutine or a generator without running its
    # body: the delivery would count as handled while the handler never ran. A handler is a plain function.
    for kind, test in (("an async generator function", inspect.isasyncgenfunction),
                       ("an async function", inspect.iscoroutinefunction),
                       ("a generator function", inspect.isgeneratorfunction)):
        if test(function):
            raise CatalogError(where, key, f"{name} is {kind}: a handler must be a plain def, run when called (calling "
                                           "it would only make an object, and the handler's body would never run)")
    try:
        inspect.signature(function).bind(None, None)
    except TypeError:
        raise CatalogError(where, key, f"{name}{inspect.signature(function)} cannot be called as a handler "
                                       f"{name}(event, uow): it must take two arguments") from None
    except ValueError:  # a builtin without a signature: it will be called, and fail there if it must
        pass
    return function


def _refuse_shadowing(file: Path, module: str) -> None:
    if module in PROJECT_MODULES:
        owner = "yafdp's own" if module == "yafdp" else (
            "the standard library's" if module in sys.stdlib_module_names else "the Lambda runtime's")
        raise CatalogError(file, "line 1", f"the handler module {module!r} would shadow {owner} module {module!r} "
                                           f"wherever its folder is on the import path: name the service otherwise")


def _raised_at(exc: BaseException, file: Path, folder: Path) -> tuple[str, int | None]:
    """The file and line of the catalog's own code that raised ``exc`` (the deepest frame in its folder)."""
    folder = folder.resolve()
    where, line = str(file), None
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            inside = Path(frame.filename).resolve().is_relative_to(folder)
        except OSError:
            inside = False
        if inside:
            where, line = frame.filename, frame.lineno
    return where, line


def _check_hook(module: types.ModuleType, file: Path, name: str) -> None:
    """A hook's names have the shapes the module's docstring gives; :class:`CatalogError` naming the name if not."""
    def need(attr: str, ok, wanted: str) -> None:
        if hasattr(module, attr) and not ok(getattr(module, attr)):
            raise CatalogError(file, attr, f"must be {wanted}")

    if name == "saga":
        need("FILES", lambda v: isinstance(v, (list, tuple)) and all(
            isinstance(f, str) and f and not Path(f).is_absolute() and ".." not in Path(f).parts for f in v),
            "a list of file names inside the catalog folder")
        for function in ("world", "requests", "summary"):
            need(function, callable, "a function")
        need("OUTCOME_RATES", lambda v: isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p <= 1
            for k, p in v.items()), "a dict of outcome name -> default probability from 0 to 1")
    else:
        need("INVARIANTS", lambda v: isinstance(v, (list, tuple)) and all(callable(f) for f in v),
             "a list of functions invariant(run) -> Invariant")
