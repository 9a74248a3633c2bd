"""The workbook runner: chapters side by side in worker processes, results in course order, a failure named by
its chapter, only the parameters a chapter declares."""

import re

import pytest

from yafdp.workbook import NotebookFailed, run_workbook


def _chapter(folder, name, code, parameters="out_dir = None"):
    import nbformat  # here, not at collection: it imports jsonschema, a second or two in every pytest-xdist worker

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(code)]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / name)


def test_chapters_run_side_by_side_into_a_relative_build_folder_and_come_back_in_course_order(tmp_path, monkeypatch):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    for name in ("03_third", "02_second", "01_first"):
        _chapter(chapters, f"{name}.ipynb", "from pathlib import Path\nPath(out_dir, 'mark').mkdir(exist_ok=True)")
    monkeypatch.chdir(tmp_path)
    done = run_workbook("build", notebooks_dir=chapters, echo=lambda line: None, jobs=2)
    assert [chapter.name for chapter in done] == ["01_first", "02_second", "03_third"]
    for chapter in done:  # papermill runs each chapter from notebooks/: nothing may land under it
        assert chapter.html.exists() and chapter.notebook.parent == tmp_path / "build" / "notebooks"
    assert not (chapters / "build").exists() and (tmp_path / "build" / "mark").is_dir()
    assert all(chapter.cpu_seconds > 0 for chapter in done)  # its worker's and its kernel's CPU, counted in the worker


def test_a_chapter_gets_only_the_parameters_it_declares(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_teacher.ipynb", "assert solutions is True", parameters="out_dir = None\nsolutions = False")
    _chapter(chapters, "02_plain.ipynb", "assert 'solutions' not in globals()")
    done = run_workbook(tmp_path / "build", {"solutions": True}, notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    assert len(done) == 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_chapter_is_named_with_its_cell_and_error_and_keeps_its_html(tmp_path, jobs):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_fine.ipynb", "print('fine')")
    _chapter(chapters, "02_broken.ipynb", "raise ValueError('the order book is empty')")
    with pytest.raises(NotebookFailed, match=r"02_broken\.ipynb failed in cell \d+: ValueError: the order book is empty"):
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=jobs)
    assert "the order book is empty" in (tmp_path / "build" / "html" / "02_broken.html").read_text()


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_workbook_keeps_going_past_a_failing_chapter_and_names_every_one_that_failed(tmp_path, jobs):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _chapter(chapters, "01_broken.ipynb", "raise KeyError('Order_Initiated')")
    _chapter(chapters, "02_fine.ipynb", "print('fine')")
    _chapter(chapters, "03_broken.ipynb", "x = 1\nraise ValueError('no such service')")
    with pytest.raises(NotebookFailed) as failed:
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=jobs)
    lines = str(failed.value).splitlines()
    assert failed.value.failed == ["01_broken.ipynb", "03_broken.ipynb"] and len(lines) == 2
    assert lines[0].startswith("01_broken.ipynb failed in cell") and "KeyError" in lines[0]
    assert lines[1].startswith("03_broken.ipynb failed in cell") and "no such service" in lines[1]
    assert (tmp_path / "build" / "html" / "02_fine.html").exists()  # ran to its end, after the first failure


def test_the_teachers_copy_goes_beside_the_learners_build_by_default(tmp_path, monkeypatch, capsys):
    from yafdp.cli import main

    learner = tmp_path / "build" / "notebooks" / "01_identify_events.ipynb"
    learner.parent.mkdir(parents=True)
    learner.write_text("the learner's copy")
    monkeypatch.chdir(tmp_path)  # the command's default --out is relative to where it runs
    assert main(["workbook", "--solutions", "--only", "01", "--jobs", "1"]) == 0, capsys.readouterr().err
    assert learner.read_text() == "the learner's copy"
    said = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"  wrote \S+ and \S+ \(\d+\.\d s, \d+\.\d s of CPU\)", said[1]), said
    assert re.fullmatch(r"1 notebook\(s\) executed into \S+ in \d+\.\d s \(\d+\.\d s of CPU in the chapters\)", said[-1]), said
    assert (tmp_path / "build" / "solutions" / "html" / "01_identify_events.html").exists()


def _course_chapter(folder, name, title, minutes, goals):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    intro = f"# {name[:2]} · {title}\n\n*About {minutes} minutes.*\n\nIn this chapter you will learn:\n\n" + "".join(
        f"{n}. {goal}\n" for n, goal in enumerate(goals, 1))
    notebook.cells = [nbformat.v4.new_markdown_cell(intro),
                      nbformat.v4.new_code_cell("out_dir = None", metadata={"tags": ["parameters"]}),
                      nbformat.v4.new_code_cell(f"print('{title}')")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / f"{name}.ipynb")


def _nav(page: str) -> list[str]:
    import re

    navs = re.findall(r"<!-- yafdp-course-nav -->(.*?)<!-- /yafdp-course-nav -->", page, flags=re.S)
    return [re.findall(r'href="([^"]+)"', nav) for nav in navs]


def test_the_workbook_writes_an_index_of_the_chapters_present_and_links_each_to_its_neighbours(tmp_path):
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _course_chapter(chapters, "01_events", "Identify the events", 25, ["name the **events**", "write `schemas`"])
    _course_chapter(chapters, "02_rules", "Map the rules", 20, ["read a pattern\n   over two lines"])
    _course_chapter(chapters, "03_end", "Summary", 5, ["look back"])
    html = tmp_path / "build" / "html"
    run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    index = (html / "index.html").read_text()
    assert "A course of 3 chapters, about 50 minutes" in index and "<script" not in index
    assert [f"0{n}_" in index for n in (1, 2, 3)] == [True] * 3
    assert '<a href="01_events.html">01 · Identify the events</a>' in index and "about 25 minutes" in index
    assert "<li>name the <strong>events</strong></li><li>write <code>schemas</code></li>" in index
    assert "<li>read a pattern over two lines</li>" in index
    assert _nav((html / "01_events.html").read_text()) == [["index.html", "02_rules.html"]] * 2  # top and bottom
    assert _nav((html / "02_rules.html").read_text()) == [["01_events.html", "index.html", "03_end.html"]] * 2
    assert _nav((html / "03_end.html").read_text()) == [["02_rules.html", "index.html"]] * 2

    # A chapter inserted (the course renumbered) and one built alone: the site follows the notebooks present,
    # each copy keeps one set of links, and a chapter not built yet is listed without a link (nor linked to: the
    # copy of the old 03_end is no chapter now).
    (chapters / "03_end.ipynb").rename(chapters / "04_end.ipynb")
    _course_chapter(chapters, "03_choice", "Classic or custom bus?", 30, ["choose a bus"])
    run_workbook(tmp_path / "build", notebooks_dir=chapters, only=["03"], echo=lambda line: None, jobs=1)
    index = (html / "index.html").read_text()
    assert "A course of 4 chapters, about 80 minutes" in index
    assert '<a href="03_choice.html">03 · Classic or custom bus?</a>' in index
    assert "04 · Summary <span class=\"missing\">(not built: <code>yafdp workbook --only 04</code>)" in index
    assert _nav((html / "03_choice.html").read_text()) == [["02_rules.html", "index.html"]] * 2  # 04 not built
    assert _nav((html / "02_rules.html").read_text()) == [["01_events.html", "index.html", "03_choice.html"]] * 2


def test_a_failed_chapter_is_marked_in_the_index_and_left_out_of_the_links_until_it_passes(tmp_path):
    """The index is written whatever failed; a failed chapter's copy shows the error, so the course does not lead
    to it from its neighbours, and a later build of another chapter does not forget that it failed."""
    chapters = tmp_path / "notebooks"
    chapters.mkdir()
    _course_chapter(chapters, "01_events", "Identify the events", 25, ["name the events"])
    _course_chapter(chapters, "02_rules", "Map the rules", 20, ["read a pattern"])
    _course_chapter(chapters, "03_end", "Summary", 5, ["look back"])
    broken = (chapters / "02_rules.ipynb").read_text().replace("print(", "raise ValueError(", 1)
    (chapters / "02_rules.ipynb").write_text(broken)
    html = tmp_path / "build" / "html"
    with pytest.raises(NotebookFailed):
        run_workbook(tmp_path / "build", notebooks_dir=chapters, echo=lambda line: None, jobs=1)
    for build in range(2):  # the failed build, then a build of chapter 01 alone
        index = (html / "index.html").read_text()
        assert "02 · Map the rules</a> <span class=\"missing\">(failed in its last build" in index
        assert _nav((html / "01_events.html").read_text()) == [["index.html", "03_end.html"]] * 2
        run_workbook(tmp_path / "build", notebooks_dir=chapters, only=["01"], echo=lambda line: None, jobs=1)
