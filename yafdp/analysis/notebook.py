"""What every chapter's first cell calls, and small display helpers for the notebooks.

:func:`setup` makes tables show their whole content (pandas cuts text at 50 characters by default: the
descriptions, patterns, IAM conditions and dead-letter messages are the content) and resolves the build
folder. :func:`titled` shows a table under its title (every table of the course has one, with its units),
:func:`show_source` a function's code, :func:`show_diagram` a diagram drawn as an image with its Mermaid text
beside it, so the offline HTML copies show every diagram too.
"""

from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

import pandas as pd

from yafdp.shipped import PACKAGE_DIR, REPOSITORY


def default_build_dir() -> Path:
    """``build/`` of the repository in a source checkout (the same folder whether a notebook runs from
    ``notebooks/``, from the repository root or elsewhere); once installed from a wheel, ``build/`` in the current
    folder, as ``yafdp workbook`` writes by default."""
    return (REPOSITORY if REPOSITORY is not None else Path.cwd()).resolve() / "build"


def build_dir(out_dir: str | Path | None = None) -> Path:
    """Where a chapter writes its figures and runs: ``out_dir`` when given (a relative one stays relative, to the
    notebook's working folder: the workbook runs each chapter in its build folder with ``out_dir="."``, so that no
    output shows the builder's path), else :func:`default_build_dir`.

    Examples
    --------
    >>> build_dir() == default_build_dir()
    True
    >>> build_dir("/tmp/x"), build_dir(".")
    (PosixPath('/tmp/x'), PosixPath('.'))
    """
    return Path(out_dir) if out_dir is not None else default_build_dir()


def setup(out_dir: str | Path | None = None) -> str:
    """Set the display options of the workbook and return the build folder (as a string, for f-strings).

    ``out_dir=None`` is :func:`default_build_dir`: the repository's ``build/``, wherever the notebook is run from.

    Examples
    --------
    >>> folder = setup(None)
    >>> pd.get_option("display.max_colwidth") is None and folder.endswith("build")
    True
    """
    pd.set_option("display.max_colwidth", None)  # never cut a cell's text
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", 200)
    pd.set_option("display.precision", 3)
    folder = build_dir(out_dir)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    return str(folder)


class Html:
    """An object that Jupyter displays as the given HTML (and as ``text`` where HTML is not shown)."""

    def __init__(self, markup: str, text: str = ""):
        self.markup, self.text = markup, text

    def _repr_html_(self) -> str:
        return self.markup

    def __repr__(self) -> str:
        return self.text or self.markup


CAPTION_STYLE = "caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.4em"


def with_caption(markup: str, title: str) -> str:
    """``markup`` (HTML holding a ``<table>``) with ``title`` as the first table's ``<caption>`` (escaped).

    Examples
    --------
    >>> with_caption("<div><table border='1'><tr><td>1</td></tr></table></div>", "Orders (count)").count("<caption")
    1
    """
    caption = f'<caption style="{CAPTION_STYLE}">{html.escape(title)}</caption>'
    return re.sub(r"(<table\b[^>]*>)", lambda tag: tag.group(1) + caption, markup, count=1)


def titled(table, title: str):
    """``table`` shown under ``title``, its ``<caption>``: what a row is and the units of the numbers. Every table
    a chapter shows goes through here (tests/notebooks checks that every table of every chapter has a caption).

    ``table`` is a DataFrame or a Series (shown as pandas shows a DataFrame) or a pandas Styler (shown with its
    styles); where HTML is not shown, the title above the table's text. Raises TypeError for anything else.

    Examples
    --------
    >>> shown = titled(pd.Series({"a": 1}, name="orders"), "Orders per status (count)")
    >>> "<caption" in shown._repr_html_(), repr(shown).splitlines()[0]
    (True, 'Orders per status (count)')
    """
    from pandas.io.formats.style import Styler

    if isinstance(table, Styler):
        styled = table.set_caption(title).set_table_styles([{"selector": "caption", "props": CAPTION_STYLE}],
                                                           overwrite=False)
        return Html(styled.to_html(), f"{title}\n{table.data!r}")
    if isinstance(table, pd.Series):
        table = table.to_frame()
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"titled() shows a DataFrame, a Series or a Styler, not {type(table).__name__}")
    return Html(with_caption(table._repr_html_(), title), f"{title}\n{table!r}")


def show_source(*functions, title: str | None = None) -> Html:
    """The source of one or more functions as a code block, with the file each comes from.

    Examples
    --------
    >>> from yafdp.services.payment import charge_order
    >>> "def charge_order" in show_source(charge_order).text
    True
    """
    blocks, texts = [], []
    for function in functions:
        source = inspect.getsource(function)
        module = inspect.getmodule(function)
        where = Path(inspect.getsourcefile(function) or "?")
        try:
            where = where.relative_to(PACKAGE_DIR.parent)
        except ValueError:
            pass
        name = f"{module.__name__}.{function.__qualname__}" if module else function.__qualname__
        blocks.append(f"<p><code>{html.escape(name)}</code> — <code>{html.escape(str(where))}</code></p>"
                      f"<pre style='font-size: 0.85em; line-height: 1.3; white-space: pre-wrap'>"
                      f"{html.escape(source)}</pre>")
        texts.append(f"# {name} ({where})\n{source}")
    heading = f"<p><b>{html.escape(title)}</b></p>" if title else ""
    return Html(heading + "".join(blocks), "\n".join(texts))


def show_diagram(figure, mermaid: str, *, name: str, out_dir: str | Path | None) -> None:
    """Display a diagram as an image drawn from the run or catalog (a PNG output: visible in JupyterLab and in
    the offline HTML copies alike), with the same diagram's Mermaid text folded under it. The figure is saved
    as ``<out_dir>/figures/<name>.png`` and closed; the image shown is the one saved, drawn once."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    from yafdp.analysis.figures import PNG_DPI, alt_text, drawn_png, png_size, save

    save(figure, name, out_dir)
    png = drawn_png(figure)
    if png is None:  # not saved (no out_dir)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
        png = buffer.getvalue()
    alt = alt_text(figure)
    plt.close(figure)
    width = round(png_size(png)[0] * 110 / PNG_DPI)  # as large as at 110 dpi
    display(Image(png, format="png", width=width), metadata={"image/png": {"width": width, "alt": alt}})
    display(Html(f"<details><summary>the same diagram as Mermaid text</summary>"
                 f"<pre class='yafdp-mermaid-source'>{html.escape(mermaid)}</pre></details>", mermaid))
