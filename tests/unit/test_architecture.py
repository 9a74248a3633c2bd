"""The layout is the architecture: imports point one way (runs → backends → plan/runtime → catalog/patterns),
no module imports itself in a circle, and every implementation of an interface has the interface's signatures."""

import ast
import inspect
import re
from pathlib import Path

import pytest

import yafdp
from yafdp.backends.aws.bus import AwsBus
from yafdp.backends.aws.dynamo_state import DynamoState
from yafdp.backends.aws.functions import InProcessFunctions, LambdaFunctions
from yafdp.backends.local.bus import LocalBus
from yafdp.backends.local.custom_bus import LocalCustomBus
from yafdp.backends.local.run_writer import SqliteServiceState
from yafdp.backends.local.step_functions import LocalStepFunctions
from yafdp.backends.local.timing import MeasuredTiming
from yafdp.runtime.interfaces import Bus, FunctionRunner, TimingModel
from yafdp.runtime.unit_of_work import BufferedUnitOfWork, ServiceState, UnitOfWork
from yafdp.simulation.timing import SimulatedTiming

PACKAGE = Path(yafdp.__file__).resolve().parent
# Lower layers never import higher ones; a layer may import its own and any lower one.
LAYERS = {"errors": 0, "quoting": 0, "reading": 0, "extras": 0, "progress": 0, "shipped": 0, "model_validation": 0, "patterns": 0, "catalog": 1, "custom_event_bus": 2,
          "plan": 2, "runtime": 3, "services": 3, "simulation": 3, "backends": 4, "runs": 5, "analysis": 6, "workbook": 7,
          "site": 7, "cli": 7, "interrupt": 0, "__main__": 7, "__init__": 0}
PLOTTING = ("pandas", "matplotlib", "networkx")
MODULE_FILES: set[str] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:  # noqa: C901
    """Every module ``path`` imports, at any depth of its code (lazy imports included)."""
    tree, found = ast.parse(path.read_text(encoding="utf-8")), set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & MODULE_FILES
            found.update(submodules)
            if len(submodules) < len(node.names):  # names taken from the module itself, not its submodules
                found.add(base)
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
MODULE_FILES = set(MODULES)
GRAPH = {name: {m for m in _imports(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[1] if "." in module else "__init__"]


def test_the_package_has_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_imports_point_from_higher_layers_to_lower_ones():
    wrong = [f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets if _layer(t) > _layer(m)]
    assert not wrong, wrong


def test_the_aws_backend_does_not_import_runs():
    assert not [(m, t) for m, targets in GRAPH.items() if m.startswith("yafdp.backends.aws")
                for t in targets if t.startswith("yafdp.runs")]


def test_only_the_analysis_package_imports_pandas_matplotlib_or_networkx():
    offenders = [(name, sorted(i for i in _imports(path) if i.split(".")[0] in PLOTTING))
                 for name, path in MODULES.items() if not name.startswith("yafdp.analysis")]
    assert not [o for o in offenders if o[1]], offenders


def _signature(cls, name: str) -> list[tuple]:
    parameters = inspect.signature(getattr(cls, name)).parameters.values()
    return [(p.name, p.kind, p.default) for p in parameters]


def _protocol_methods(protocol) -> list[str]:
    return [name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")]


@pytest.mark.parametrize("protocol, implementations", [
    (Bus, [LocalBus, LocalCustomBus, LocalStepFunctions, AwsBus]),
    (TimingModel, [MeasuredTiming, SimulatedTiming]),
    (FunctionRunner, [InProcessFunctions, LambdaFunctions]),
    (ServiceState, [SqliteServiceState, DynamoState, BufferedUnitOfWork]),
    (UnitOfWork, [BufferedUnitOfWork]),
], ids=["bus", "timing", "function-runner", "service-state", "unit-of-work"])
def test_every_implementation_has_the_interface_signatures(protocol, implementations):
    methods = _protocol_methods(protocol)
    assert methods
    for method in methods:
        expected = _signature(protocol, method)
        for implementation in implementations:
            assert hasattr(implementation, method), f"{implementation.__name__} lacks {method}"
            assert _signature(implementation, method) == expected, f"{implementation.__name__}.{method}"


# The shipped catalog's own code (its handlers) may name its events and statuses; so may the course's exercise bank,
# whose questions are about the shipped catalog (each says which events with `about=`, and is skipped elsewhere), and
# the starter and scenario of its design exercise 06.customer-cancels.
SHIPPED = ("yafdp.services", "yafdp.analysis.exercises", "yafdp.analysis.cancellation")


def _shipped_vocabulary() -> set[str]:
    from yafdp.catalog import load_catalog

    catalog = load_catalog()
    return set(catalog.events) | set(catalog.saga.ranks)


def _code_strings(path: Path):
    """Every string literal of a module's code that is not a docstring, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_module_outside_the_shipped_catalog_names_its_events_or_statuses():
    """The saga's vocabulary lives in the catalog: the runs, the backends, the checker and the analysis read it
    there, so they work on any catalog (tests/integration/test_trip_booking.py runs a second one)."""
    words = _shipped_vocabulary()
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, words))) + r")\b")
    named = [f"{name}:{line}: {pattern.search(text)[0]}" for name, path in MODULES.items()
             if not name.startswith(SHIPPED) for line, text in _code_strings(path) if pattern.search(text)]
    assert not named, named
