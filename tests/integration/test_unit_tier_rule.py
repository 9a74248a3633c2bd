"""The unit tier's rule (tests/conftest.py) holds: a unit test module that imports moto, subprocess or a notebook
runner is named, and while a unit test runs, starting a process or using a socket raises."""

import subprocess

import pytest

import conftest


def test_a_unit_test_module_importing_what_the_tier_forbids_is_named_with_each_import(tmp_path):
    module = tmp_path / "test_x.py"
    module.write_text("import json\nimport subprocess\nfrom moto import mock_aws\nfrom yafdp import workbook\n"
                      "def test_later():\n    import papermill.iorw\n")
    assert conftest._forbidden_imports(module) == ["moto", "moto.mock_aws", "papermill.iorw", "subprocess",
                                                   "yafdp.workbook"]


def test_while_a_unit_test_runs_a_process_or_a_socket_raises():
    conftest._unit_test_running.set()
    try:
        with pytest.raises(RuntimeError, match=r"a unit test may not start a process .*subprocess\.Popen"):
            subprocess.run(["true"])
    finally:
        conftest._unit_test_running.clear()
    assert subprocess.run(["true"]).returncode == 0  # outside the unit tier, as before
