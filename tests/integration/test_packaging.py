"""yafdp as a user of the Python ecosystem installs it: the install files agree with each other and with the lock;
the core runs without the extras and a command that needs a missing one says which to install; the built wheel
carries the catalog and the notebooks and runs from an empty folder; `make` installs the notebooks' strip filter
and `make lab` the project's kernel."""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import yafdp
from yafdp.extras import EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
# Every requirement yafdp states, core and extras, without the dev extra's reference to yafdp's own extras.
REQUIREMENTS = [Requirement(r) for r in PROJECT["dependencies"] + [r for rs in EXTRAS.values() for r in rs]
                if not r.startswith("yafdp[")]
PINS = {Requirement(line).name.lower().replace("_", "-"): Requirement(line)
        for line in (ROOT / "constraints.txt").read_text().splitlines() if line.strip() and not line.startswith("#")}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    wanted = {_name(str(r)) for r in REQUIREMENTS}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    named = {_name(d) for d in conda + pip if not d.startswith("-e")} - {"python", "pip"}
    assert named == wanted
    assert "-e .[dev]" in pip, "environment.yml must install the project itself, with every extra"


def test_the_constraints_pin_every_requirement_to_a_release_it_allows_and_the_tests_run_on_those_releases():
    for requirement in REQUIREMENTS:
        name = requirement.name.lower().replace("_", "-")
        assert name in PINS, f"constraints.txt pins no release of {name} (run `make lock`)"
        (pin,) = PINS[name].specifier
        assert pin.operator == "==" and requirement.specifier.contains(pin.version, prereleases=True), \
            f"constraints.txt pins {name} {pin}, which pyproject.toml's {requirement} refuses"
        assert metadata.version(name) == pin.version, \
            f"{name} {metadata.version(name)} is installed, constraints.txt pins {pin.version}: `make test` reinstalls"


README_NAMES = {"JupyterLab": "jupyterlab", "ipykernel": "ipykernel", "papermill": "papermill", "nbconvert": "nbconvert",
                "pandas": "pandas", "matplotlib": "matplotlib", "boto3": "boto3", "moto": "moto",
                "OpenTelemetry SDK": "opentelemetry-sdk", "OTLP JSON file exporter": "opentelemetry-exporter-otlp-json-file",
                "tqdm": "tqdm", "orjson": "orjson", "fastjsonschema": "fastjsonschema", "networkx": "networkx",
                "cfn-lint": "cfn-lint", "pytest": "pytest"}


def test_the_readme_names_the_tested_versions_of_constraints_txt():
    readme = " ".join((ROOT / "README.md").read_text().split())
    tested = readme.split("**Tested versions.**", 1)[1].split("`make lock`", 1)[0]
    for said, name in README_NAMES.items():
        found = re.search(rf"{re.escape(said)} (\d[\w.]*\w)", tested)
        assert found, f"the README's tested versions do not name {said}"
        assert found.group(1) == str(next(iter(PINS[name].specifier)).version), f"{said}: README {found.group(1)}"


def test_pyproject_ships_every_package_and_the_top_level_data_and_notebooks():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "yafdp").rglob("__init__.py")}
    listed = set(setuptools["packages"])
    assert found <= listed, f"pyproject.toml's packages lacks {sorted(found - listed)}"
    assert setuptools["package-dir"] == {"yafdp.data": "data", "yafdp.notebooks": "notebooks"}
    assert listed - found == {"yafdp.data", "yafdp.data.latency", "yafdp.data.services", "yafdp.notebooks"}


def _closure(requirements: list[str], extras=()) -> set[str]:
    """The distributions ``requirements`` bring when installed, transitively (markers evaluated here)."""
    seen: set[str] = set()
    todo = [(Requirement(r), set(extras)) for r in requirements]
    while todo:
        requirement, _ = todo.pop()
        name = requirement.name.lower().replace("_", "-")
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            dependency = Requirement(line)
            wanted = dependency.marker is None or any(dependency.marker.evaluate({"extra": e})
                                                      for e in ("", *requirement.extras))
            if wanted:
                todo.append((dependency, set()))
    return seen


def test_each_module_of_an_extra_comes_with_that_extra_and_not_with_the_core():
    providers = metadata.packages_distributions()
    core = _closure(PROJECT["dependencies"])
    for extra, modules in EXTRA_MODULES.items():
        brought = _closure(EXTRAS[extra])
        for module in modules:
            distributions = {d.lower().replace("_", "-") for d in providers[module]}
            assert distributions & brought, f"{module} ({distributions}) does not come with the {extra} extra"
            assert not distributions & core, f"{module} comes with the core: it needs no extra"


BLOCKER = ("import sys\n"
           "for name in sys.argv[1].split(','):\n"
           "    sys.modules[name] = None  # `import name` now raises ModuleNotFoundError, as if not installed\n"
           "from yafdp.cli import main\n"
           "commands = [line.split('\\x1f') for line in sys.argv[2:]]\n"
           "codes = [main(command) for command in commands]\n"
           "print(codes, file=sys.stderr)\n"
           "sys.exit(max(codes))\n")


def _without(modules, *commands, cwd):
    """Run yafdp commands in one Python process where ``modules`` cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCKER, ",".join(modules),
                           *("\x1f".join(map(str, command)) for command in commands)],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


EVERY_EXTRA_MODULE = sorted({m for modules in EXTRA_MODULES.values() for m in modules})


def test_the_core_commands_run_without_jupyterlab_pandas_boto3_or_moto(tmp_path):
    result = _without(EVERY_EXTRA_MODULE, ["catalog"], ["catalog", "--format", "asyncapi"], ["lint"],
                      ["test-pattern", "--pattern", '{"source": ["yafdp.order"]}', "--event",
                       '{"id": "1", "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "eu-west-1",'
                       ' "resources": [], "source": "yafdp.order", "detail-type": "x", "detail": {}}'],
                      ["plan"], ["state-machine"], ["run", "--orders", 10, "--out", "run"], ["check", "run"],
                      ["run", "--orders", 10, "--latency-model", "aws-eu-west-1", "--out", "simulated"],
                      ["fit-profile", "run", "--out", "mine.json"],
                      ["trace", "run", "--format", "otlp", "--out", "run.otlp.jsonl"],
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ModuleNotFoundError" not in result.stderr


@pytest.mark.parametrize("blocked, command, extra, module", [
    (["papermill"], ["workbook", "--only", "01"], "workbook", "papermill"),
    (["pandas"], ["workbook", "--only", "01"], "workbook", "pandas"),
    (["boto3", "botocore"], ["run", "--backend", "moto", "--orders", 1, "--out", "run"], "aws", "boto3"),
    (["boto3", "botocore"], ["destroy", "--backend", "aws"], "aws", "boto3"),
], ids=["workbook-without-papermill", "workbook-without-pandas", "moto-run-without-boto3", "destroy-without-boto3"])
def test_a_command_that_needs_a_missing_extra_says_which_to_install_in_one_line(tmp_path, blocked, command, extra,
                                                                                module):
    result = _without(blocked, command, cwd=tmp_path)
    lines = result.stderr.splitlines()[:-1]  # the last line is the blocker's list of exit codes
    assert result.returncode == 2
    assert lines == [f"yafdp {command[0]}: needs {module}, which comes with yafdp's {extra} extra: "
                     f"pip install 'yafdp[{extra}]'"], result.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "build").exists()


def test_version_is_the_packages_own():
    result = subprocess.run([sys.executable, "-m", "yafdp", "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == f"yafdp {metadata.version('yafdp')}\n"
    assert metadata.version("yafdp") == yafdp.__version__


def test_runtime_core_does_not_import_pandas_or_matplotlib():
    core = ["yafdp.catalog", "yafdp.patterns", "yafdp.simulation", "yafdp.plan.step_functions", "yafdp.backends.tasks", "yafdp.backends.local.step_functions", "yafdp.analysis.costs"]
    code = (f"import sys; import {', '.join(core)}; "
            "bad = [m for m in ('pandas', 'matplotlib', 'networkx', 'IPython') if m in sys.modules]; "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make workbook" in (ROOT / "README.md").read_text()


def test_notebooks_are_committed_without_outputs():
    # The notebook files read as JSON: nbformat would import jsonschema, seconds of CPU in a test worker
    # that may run no notebook at all, to give the same cells (the notebooks are nbformat 4 already).
    committed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "notebooks/*.ipynb"], capture_output=True,
                               text=True)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if committed.returncode == 0:  # a git checkout: what is in the index, as the strip filter left it
        paths = [ROOT / line for line in committed.stdout.split()]
        texts = [subprocess.run(["git", "-C", str(ROOT), "show", f":{p.relative_to(ROOT)}"], capture_output=True,
                                text=True, check=True).stdout for p in paths]
    else:
        texts = [p.read_text(encoding="utf-8") for p in paths]
    assert paths
    for path, text in zip(paths, texts):
        nb = json.loads(text)
        assert nb["nbformat"] == 4, f"{path.name} is not an nbformat 4 notebook"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell.get("execution_count") is None, f"{path.name} has outputs"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


def _python_of_this_environment(venv: Path) -> None:
    """``venv/bin/python``: a script that runs this test's interpreter (its environment, nbstripout included)."""
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)


def test_make_installs_a_git_filter_that_stages_notebooks_without_outputs(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    _python_of_this_environment(repo / ".venv")
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "git-filter", "VENV=.venv"], cwd=repo, check=True,
                   timeout=120)
    cell = {"cell_type": "code", "execution_count": 7, "id": "kept-id", "metadata": {}, "source": ["print(1)"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]}
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (repo / "chapter.ipynb").write_text(json.dumps(notebook))
    staged = subprocess.run(["git", "add", "chapter.ipynb"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert staged.returncode == 0 and staged.stderr == "", staged.stderr
    index = json.loads(subprocess.run(["git", "show", ":chapter.ipynb"], cwd=repo, capture_output=True, text=True,
                                      check=True).stdout)
    assert index["cells"][0]["outputs"] == [] and index["cells"][0]["execution_count"] is None
    assert index["cells"][0]["id"] == "kept-id" and index["cells"][0]["source"] == ["print(1)"]
    assert json.loads((repo / "chapter.ipynb").read_text())["cells"][0]["outputs"], "the work tree keeps its outputs"


@pytest.mark.parametrize("uid", ["0", "1000"], ids=["root", "user"])
def test_make_lab_registers_the_projects_kernel_and_passes_allow_root_only_as_root(tmp_path, uid):
    venv = tmp_path / "venv"
    _python_of_this_environment(venv)
    (venv / "bin" / "jupyter").write_text(f'#!/bin/sh\necho "$@" > "{tmp_path / "jupyter-args"}"\n')
    (venv / "bin" / "jupyter").chmod(0o755)
    (venv / "bin" / ".installed").touch()  # newer than pyproject.toml and constraints.txt: nothing to install
    environment = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "jupyter")}
    subprocess.run(["make", "-s", "-C", str(ROOT), "lab", f"VENV={venv}", f"USER_ID={uid}"], env=environment,
                   check=True, capture_output=True, timeout=300)
    assert (tmp_path / "jupyter-args").read_text().split() == ["lab", *(["--allow-root"] if uid == "0" else []),
                                                               "notebooks"]
    kernel = json.loads((tmp_path / "jupyter" / "kernels" / "yafdp" / "kernel.json").read_text())
    assert kernel["argv"][0] == sys.executable and kernel["display_name"] == "Python (yafdp)"


def _source_tree(destination: Path) -> Path:
    """The files a wheel is built from, copied (no build/, .venv/ or caches): the build writes into its tree."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, destination / name)
    for name in ("yafdp", "data", "notebooks"):
        shutil.copytree(ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                                       ".ipynb_checkpoints"))
    return destination


@pytest.mark.slow
def test_the_wheel_carries_its_data_and_notebooks_and_runs_from_an_empty_folder(tmp_path):
    """Build the wheel, install it (core only) into a fresh virtual environment, use it from an empty folder,
    then add the workbook extra and run a chapter. Dependencies come from the package index at the releases of
    constraints.txt (pip's cache makes it quick after the first time), without compiling every installed module to
    bytecode (``--no-compile``: about 40% of the install's CPU time; Python compiles what the chapter imports).
    The environment is made without pip of its own (installing it was 3 s of CPU): this environment's pip installs
    into it (``pip --python``). The commands run as on a user's machine, which writes the bytecode of what a process
    imports for the next one (PYTHONDONTWRITEBYTECODE, where the developer's environment sets it, is left out: each
    command the test runs compiled again what the ones before it had imported)."""
    (tmp_path / "source").mkdir()
    source = _source_tree(tmp_path / "source")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")}
    run = lambda command, **kw: subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=1200,
                                               env=environment, **kw)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir",
                 tmp_path / "dist", source])
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("yafdp-*.whl")
    created = run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"])
    assert created.returncode == 0, created.stderr
    python, yafdp_command = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin" / "yafdp"
    pip = [sys.executable, "-m", "pip", "--python", python]
    installed = run([*pip, "install", "--quiet", "--no-compile", "--constraint", ROOT / "constraints.txt", wheel])
    assert installed.returncode == 0, installed.stderr
    empty = tmp_path / "empty"
    empty.mkdir()

    catalog = run([yafdp_command, "catalog"], cwd=empty)
    assert catalog.returncode == 0 and "Payment_Success" in catalog.stdout, catalog.stderr
    where = run([python, "-c", "import yafdp.shipped as s; print(s.DATA_DIR); print(s.notebooks_dir())"], cwd=empty)
    site = Path(run([python, "-c", "import yafdp; print(yafdp.__file__)"], cwd=empty).stdout.strip()).parent
    assert where.stdout.split() == [str(site / "data"), str(site / "notebooks")], where.stderr
    placed = run([yafdp_command, "run", "--orders", 10, "--out", "run"], cwd=empty)
    assert placed.returncode == 0 and "10 of 10 requested orders placed" in placed.stdout, placed.stderr
    checked = run([yafdp_command, "check", "run"], cwd=empty)
    assert checked.returncode == 0 and "FAIL" not in checked.stdout, checked.stdout + checked.stderr
    no_extra = run([yafdp_command, "workbook", "--only", "01"], cwd=empty)
    assert no_extra.returncode == 2 and no_extra.stderr.endswith("pip install 'yafdp[workbook]'\n"), no_extra.stderr
    assert run([python, "-c", "import pandas"]).returncode != 0, "the core brought pandas"

    extra = run([*pip, "install", "--quiet", "--no-compile", "--constraint", ROOT / "constraints.txt", f"{wheel}[workbook]"])
    assert extra.returncode == 0, extra.stderr
    workbook = run([yafdp_command, "workbook", "--only", "01", "--jobs", 1], cwd=empty)
    assert workbook.returncode == 0, workbook.stderr
    assert (empty / "build" / "html" / "01_identify_events.html").stat().st_size > 10_000
    assert '<a href="01_identify_events.html">' in (empty / "build" / "html" / "index.html").read_text()
    assert sorted(p.name for p in empty.iterdir()) == ["build", "run"]
