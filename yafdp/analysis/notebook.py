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

from yafdp.analysis.wording import pretty
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


SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")

# Code names a table keeps as its header, because the chapter's text names them as code (a column of run.db, a
# state of a service's record): what the learner reads in the table is what the text says to look for.
# tests/notebooks/test_notebooks.py allows these, and only these, as snake_case headers.
CODE_NAMES_SHOWN = {
    "delivery_type": "run.db's deliveries column that chapter 08 names (SystemMetadata aws:DeliveryType)",
    "failed_before_award": "Loyalty's record state that chapters 07 and 08 name",
    "published_by": "run.db's events column that chapter 06 names (what published each event)",
}

# Code names whose readable words are not their own words split at "_" (see :func:`readable_header`).
HEADERS = {
    "put_events_throttled": "PutEvents throttled", "put_events_refused": "PutEvents refused",
    "dead_lettered": "dead-lettered",
}
UNIT_SUFFIXES = {"ms": "ms", "s": "s", "usd": "USD", "mb": "MB"}


def readable_header(name):
    """A table header as a learner reads it: a snake_case code name in words, its unit suffix in brackets
    (``p50_ms`` -> ``p50 (ms)``, ``order_id`` -> ``order ID``, ``put_events_throttled`` -> ``PutEvents throttled``);
    any other header, and the :data:`CODE_NAMES_SHOWN`, unchanged.

    Examples
    --------
    >>> [readable_header(n) for n in ("p50_ms", "order_id", "dead_lettered", "lambda_gb_seconds", "delivery_type", 7)]
    ['p50 (ms)', 'order ID', 'dead-lettered', 'Lambda GB seconds', 'delivery_type', 7]
    """
    if not isinstance(name, str) or not SNAKE_CASE.fullmatch(name) or name in CODE_NAMES_SHOWN:
        return name
    if name in HEADERS:
        return HEADERS[name]
    words = name.split("_")
    unit = UNIT_SUFFIXES.get(words[-1]) if len(words) > 1 else None
    if unit:
        words.pop()
    text = pretty("_".join(words))
    return f"{text} ({unit})" if unit else text


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with readable headers (:func:`readable_header`): its column labels (every level) and the names of
    its columns and index. Row labels are data, kept as they are."""
    table = table.rename(columns=readable_header)
    table.columns.names = [readable_header(n) for n in table.columns.names]
    table.index.names = [readable_header(n) for n in table.index.names]
    return table


def row_numbers_only(index: pd.Index) -> bool:
    """Whether an index only numbers the rows (unnamed integers), which a learner should not read as data."""
    return index.nlevels == 1 and index.name is None and pd.api.types.is_integer_dtype(index.dtype)


def titled(table, title: str):
    """``table`` shown under ``title``, its ``<caption>``: what a row is and the units of the numbers. Every table
    a chapter shows goes through here (tests/notebooks checks that every table of every chapter has a caption, and
    readable headers).

    ``table`` is a DataFrame, a named Series (its name is the column's header; shown as pandas shows a DataFrame)
    or a pandas Styler (shown with its styles). Headers are shown readable (:func:`readable`) and an index that only
    numbers the rows is hidden. Where HTML is not shown, the title above the table's text. Raises TypeError for
    anything else, ValueError for a Series with no name.

    Examples
    --------
    >>> shown = titled(pd.Series({"a": 1}, name="orders"), "Orders per status (count)")
    >>> "<caption" in shown._repr_html_(), repr(shown).splitlines()[0]
    (True, 'Orders per status (count)')
    >>> "<th>0</th>" in titled(pd.DataFrame({"p50_ms": [3.0]}), "t")._repr_html_()
    False
    """
    from pandas.io.formats.style import Styler

    if isinstance(table, Styler):
        styled = (table.format_index(readable_header, axis=1)
                  .set_caption(title).set_table_styles([{"selector": "caption", "props": CAPTION_STYLE}],
                                                       overwrite=False))
        if row_numbers_only(table.data.index):
            styled = styled.hide(axis="index")
        return Html(styled.to_html(), f"{title}\n{table.data!r}")
    if isinstance(table, pd.Series):
        if table.name is None:
            raise ValueError(f"titled() shows a Series under its name, as the column's header: name it ({title!r})")
        table = table.to_frame()
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"titled() shows a DataFrame, a Series or a Styler, not {type(table).__name__}")
    table = readable(table)
    if row_numbers_only(table.index):
        markup = f"<div>{table.to_html(index=False, notebook=True)}</div>"
        return Html(with_caption(markup, title), f"{title}\n{table.to_string(index=False)}")
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
