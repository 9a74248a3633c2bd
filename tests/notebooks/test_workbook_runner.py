"""The workbook runner: chapters side by side, results in course order, a failure named by its chapter."""

import nbformat
import pytest

from yafdp.workbook import NotebookFailed, run_workbook


def _chapter(folder, name, code):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("out_dir = None", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / name)


def test_chapters_run_side_by_side_and_come_back_in_course_order(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "02_second.ipynb", "print('two')")
    _chapter(chapters, "01_first.ipynb", "print('one')")
    done = run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=2)
    assert [chapter.name for chapter in done] == ["01_first", "02_second"]
    assert all(chapter.html.exists() for chapter in done)


def test_a_failing_chapter_is_named_with_its_cell_and_error(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_fine.ipynb", "print('fine')")
    _chapter(chapters, "02_broken.ipynb", "raise ValueError('the order book is empty')")
    with pytest.raises(NotebookFailed, match=r"02_broken\.ipynb failed in cell \d+: ValueError: the order book is empty"):
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=2)
