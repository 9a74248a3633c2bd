"""The install files agree with each other, and the runtime core stays free of notebook-only libraries."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    named = {_name(d) for d in conda + pip if not d.startswith("-e")} - {"python", "pip"}
    assert named == wanted
    assert any(line.startswith("-e .") for line in pip), "environment.yml must install the project itself"


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
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["nbformat"] == 4, f"{path.name} is not an nbformat 4 notebook"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, f"{path.name} has outputs"
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
