"""The course as a small site: ``build/html/index.html`` lists the chapters with their time and what each teaches,
linking each chapter's HTML copy, and every copy gets links to the previous and next chapter and to the index.

Everything is derived from the notebooks present (``NN_name.ipynb``, in course order) and read from each one's
first cell: its heading (``# 01 · Identify the events``), its time (``*About 25 minutes.*``), its opening
sentence and its numbered list of what the reader will learn. A chapter added, removed or renumbered changes the site with no list to edit.
The pages load nothing from the network: no script at all, the style inline.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

INDEX = "index.html"
FAILED_RECORD = ".failed.json"  # the chapters whose last build failed (see write_site)
NAV_START, NAV_END = "<!-- yafdp-course-nav -->", "<!-- /yafdp-course-nav -->"
STYLE = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:60rem;margin:2rem auto;"
         "padding:0 1rem;line-height:1.5;color:#222}h1{margin-bottom:0}.lead{color:#555}"
         "li.chapter{margin:1.2rem 0}.about{margin:.3rem 0}.time{color:#555;font-size:.9em}.missing{color:#888}"
         "code{background:#f3f3f3;padding:0 .2em}")
NAV_STYLE = ("display:flex;justify-content:space-between;gap:1rem;padding:.6rem 1rem;margin:0;background:#f5f5f5;"
             "border-bottom:1px solid #ddd;font-family:system-ui,sans-serif;font-size:.95rem")


@dataclass(frozen=True)
class Chapter:
    """A chapter as its first cell presents it: notebook stem, number, title, minutes (None if it does not say),
    the goals it lists, as Markdown, and the first sentence of its opening paragraph ("" if it has none), which
    the goals may refer back to (chapter 07's "to show that claim")."""

    stem: str
    number: str
    title: str
    minutes: int | None
    goals: tuple[str, ...]
    lead: str = ""


def chapter(path: Path) -> Chapter:
    """Read a chapter's heading, time and goals from the first cell of the notebook at ``path``.

    The heading is the first ``# `` line (``# 01 · Identify the events``; the title is what follows the ``·``, or
    the whole line), the time ``About N minutes``, the goals the numbered list after "you will", the lead the first
    sentence of the first paragraph that is neither the heading, nor the time, nor the goals; whatever is missing
    is left empty rather than guessed.
    """
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    intro = "".join(cells[0]["source"]) if cells and cells[0]["cell_type"] == "markdown" else ""
    heading = next((line[2:].strip() for line in intro.splitlines() if line.startswith("# ")), path.stem)
    title = heading.split("·", 1)[1].strip() if "·" in heading else heading
    minutes = re.search(r"About (\d+) minutes", intro)
    goals: list[str] = []
    after = re.split(r"you will[^\n]*\n", intro, maxsplit=1)
    for line in (after[1] if len(after) == 2 else "").splitlines():
        item = re.match(r"^\d+\.\s+(.*)$", line)
        if item:
            goals.append(item.group(1).strip())
        elif goals and line.startswith(" ") and line.strip():  # an item's text wrapped onto the next line
            goals[-1] += " " + line.strip()
        elif goals and line.strip():
            break
    lead = ""
    for paragraph in (" ".join(p.split()) for p in re.split(r"\n\s*\n", intro) if p.strip()):
        if "you will" in paragraph:  # the goals: the lead comes before them, or there is none
            break
        if not paragraph.startswith("#") and not re.fullmatch(r"\*About \d+ minutes\.\*", paragraph):
            lead = paragraph
            break
    lead = re.split(r"(?<=[.!?])\s+(?=[A-Z*`(\[])", lead, maxsplit=1)[0]
    return Chapter(path.stem, path.stem.split("_", 1)[0], title, int(minutes.group(1)) if minutes else None,
                   tuple(goals), lead)


def _inline(markdown: str) -> str:
    """A line of the notebooks' Markdown as HTML: code spans, bold and italics (all the intros use), escaped."""
    parts = re.split(r"(`[^`]*`)", markdown)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        text = html.escape(re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", part))  # a link: its text (no network)
        text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
        text = re.sub(r"\*(.+?)\*", r"<em>\1</em>", text)
        out.append(text)
    return "".join(out)


def write_site(html_dir: Path, notebooks: list[Path], ran: list[str] = (), failed: list[str] = ()) -> Path:
    """Write ``html_dir/index.html`` for the chapters ``notebooks`` (in course order) and put the previous/next
    links in each chapter's HTML copy found in ``html_dir`` (replacing those a run before put there). A chapter
    with no copy yet is listed without a link, and the links skip it. ``ran``: the stems of the chapters this
    build executed; ``failed``: those of them that failed. A failed chapter is marked as such (its copy, which
    shows the error, is linked from the index only) until a build runs it again and it passes; which chapters
    failed is kept in ``html_dir/.failed.json``. Returns the index's path."""
    html_dir = Path(html_dir)
    chapters = [chapter(path) for path in notebooks]
    record = html_dir / FAILED_RECORD
    try:
        before = set(json.loads(record.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        before = set()
    broken = (before - set(ran)) | set(failed)
    built = [c for c in chapters if (html_dir / f"{c.stem}.html").is_file() and c.stem not in broken]
    total = sum(c.minutes or 0 for c in chapters)
    items = []
    for c in chapters:
        name = f"{c.number} · {html.escape(c.title)}"
        if c.stem in broken and (html_dir / f"{c.stem}.html").is_file():
            link = (f'<a href="{html.escape(c.stem)}.html">{name}</a> <span class="missing">(failed in its last '
                    f'build: its copy shows the error; <code>yafdp workbook --only {c.number}</code>)</span>')
        else:
            link = (f'<a href="{html.escape(c.stem)}.html">{name}</a>' if c in built
                    else f'{name} <span class="missing">(not built: <code>yafdp workbook --only {c.number}</code>)</span>')
        time = f' <span class="time">· about {c.minutes} minutes</span>' if c.minutes else ""
        lead = f'<p class="about">{_inline(c.lead)}</p>' if c.lead else ""
        goals = "".join(f"<li>{_inline(goal)}</li>" for goal in c.goals)
        items.append(f'<li class="chapter">{link}{time}{lead}' + (f"<ol>{goals}</ol>" if goals else "") + "</li>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>yafdp: the course</title>'
            f"<style>{STYLE}</style></head><body>"
            "<h1>The choreography saga, run for real</h1>"
            f'<p class="lead">A course of {len(chapters)} chapters, about {total} minutes for a learner who reads, runs '
            "every cell and does the exercises. Each chapter is an executed notebook, readable here without "
            "Jupyter.</p>"
            f'<ul style="list-style:none;padding:0">{"".join(items)}</ul></body></html>\n')
    index = html_dir / INDEX
    html_dir.mkdir(parents=True, exist_ok=True)
    _write(index, page)
    _write(record, json.dumps(sorted(broken)))
    for position, c in enumerate(built):
        previous = built[position - 1] if position > 0 else None
        following = built[position + 1] if position + 1 < len(built) else None
        _put_navigation(html_dir / f"{c.stem}.html", previous, following)
    return index


def _put_navigation(page: Path, previous: Chapter | None, following: Chapter | None) -> None:
    """Put the course's links at the top and the bottom of a chapter's HTML copy, once (a run before's removed)."""
    def link(c: Chapter | None, text: str) -> str:
        return f'<a href="{html.escape(c.stem)}.html">{text}</a>' if c else "<span></span>"

    before = link(previous, f"← {previous.number} · {html.escape(previous.title)}" if previous else "")
    after = link(following, f"{following.number} · {html.escape(following.title)} →" if following else "")
    nav = f'{NAV_START}<nav style="{NAV_STYLE}">{before}<a href="{INDEX}">the course</a>{after}</nav>{NAV_END}'
    text = re.sub(re.escape(NAV_START) + ".*?" + re.escape(NAV_END), "", page.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, text, count=1)
    text = text.replace("</body>", nav + "</body>", 1) if "</body>" in text else text + nav
    _write(page, text)


def _write(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: into a file beside it, then renamed over it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
