"""Student text in HTML pages (feedback, formgrader's submission view) is sanitised: no script a student wrote runs.

``SanitizeStudentHTML`` is nbconvert's ``SanitizeHTML`` preprocessor (bleach) with an allow-list wide enough for
written answers (headings, lists, tables, code, emphasis, links, images) and one change for Markdown cells: a cell
is rendered to HTML first (nbconvert's own ``markdown2html``, as the templates do) and the HTML is cleaned, so that
Markdown and maths stay intact (cleaning the Markdown source would break ``$x < y$`` and ``> quotes``); only a cell
whose HTML changed (it held a script, an event handler, an ``<iframe>``, ...) is replaced by its cleaned HTML. Code
outputs keep what is safe (text, PNG and JPEG images, cleaned HTML) and lose the rest (JavaScript, SVG, widgets).

Two more rules. No student HTML loads anything from elsewhere when a TA opens the page: an image's ``src`` may only
be a ``data:`` image or a cell ``attachment:`` (``allowed_attribute``); a remote image is shown without its source.
And the work is bounded before bleach's parser (html5lib, quadratic in the number of tags: one answer of 160,000
nested ``<b>`` took 762 s): a cell or output over ``MAX_CELL_CHARS`` characters or ``MAX_CELL_TAGS`` tags, or past
``MAX_NOTEBOOK_TAGS`` tags cleaned in its notebook, is shown as escaped plain text under ``TOO_BIG_NOTE``
(``escaped``, linear), not parsed. Lone surrogates anywhere in the notebook (a JSON ``\\ud800`` escape in an
answer) become U+FFFD first (``without_surrogates``): no page can be written with one, and nbgrader's
generate_feedback then fails for the whole class.

``nbgrader_config.py`` registers it on every ``HTMLExporter`` (``nbgrader generate_feedback`` and formgrader both
read that file), with nbconvert's ``HTMLExporter.sanitize_html`` left off: nbgrader's templates bypass it for
Markdown cells, and its allow-list would escape every paragraph.
"""

from __future__ import annotations

import html
import re

import bleach
from nbconvert.filters.markdown_mistune import InvalidNotebook, IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors.sanitize import SanitizeHTML

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
    "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul", "var",
})
ATTRIBUTES = {"*": ["class", "title", "align"], "a": ["href", "name", "id"], "img": ["src", "alt", "width", "height"],
              "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"], "ol": ["start"]}
PROTOCOLS = frozenset({"http", "https", "mailto", "data", "attachment"})
IMAGE_SOURCES = ("data:image/", "attachment:")  # an <img> loads nothing from elsewhere

MAX_CELL_CHARS = 100_000  # a written answer is a few kB (the homework's longest cell: 3 kB)
MAX_CELL_TAGS = 2_000  # tags in one cell or output (the homework's most: 54); html5lib needs ~0.2 s for 2,000 nested
MAX_NOTEBOOK_TAGS = 20_000  # tags cleaned per notebook (the homework: 464); later cells are shown escaped
TOO_BIG_NOTE = (f"[the grader shows this cell as plain text: it is over {MAX_CELL_CHARS:,} characters or "
                f"{MAX_CELL_TAGS:,} HTML tags, its notebook passed {MAX_NOTEBOOK_TAGS:,} tags, or it shows an "
                "attachment it does not hold]")
TAG = re.compile(r"<[A-Za-z/!?]")
SURROGATE = re.compile("[\ud800-\udfff]")


def without_surrogates(node):
    """``node`` (a notebook, or any part of it) with every lone surrogate in its text replaced by U+FFFD, in place
    where it can be; returns the node."""
    if isinstance(node, str):
        return SURROGATE.sub("\ufffd", node)
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        node[key] = without_surrogates(value)
    return node


def allowed_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute filter: ``ATTRIBUTES``, and an image's ``src`` only from ``IMAGE_SOURCES``."""
    if tag == "img" and name == "src":
        return value.strip().lower().startswith(IMAGE_SOURCES)
    return name in ATTRIBUTES.get(tag, ()) or name in ATTRIBUTES["*"]


def clean(html_str: str) -> str:
    """``html_str`` with only ``TAGS``, ``ATTRIBUTES`` (``allowed_attribute``) and ``PROTOCOLS`` left; anything else
    is escaped as text. Only for text within the bounds (``too_big``)."""
    return bleach.clean(html_str, tags=TAGS, attributes=allowed_attribute, protocols=PROTOCOLS, strip=False,
                        strip_comments=True)


def markdown_html(source: str, attachments: dict) -> str:
    """A Markdown cell's HTML as the HTML templates render it (nbconvert's ``markdown2html`` with the cell's
    attachments). Raises ``InvalidNotebook`` for an attachment the cell does not hold."""
    return MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments)).render(source)


def tag_count(text: str) -> int:
    return len(TAG.findall(text))


def too_big(text: str) -> bool:
    """Whether ``text`` is over ``MAX_CELL_CHARS`` characters or ``MAX_CELL_TAGS`` tags (counted in linear time)."""
    return len(text) > MAX_CELL_CHARS or tag_count(text) > MAX_CELL_TAGS


def escaped(text: str) -> str:
    """``text`` as plain text in HTML, under ``TOO_BIG_NOTE``: every character escaped, one line (a Markdown renderer
    takes it whole as one HTML block and changes nothing in it; ``<pre>`` keeps its line breaks as ``&#10;``)."""
    body = "&#10;".join(html.escape(line) for line in text.splitlines())
    return f'<div class="grader-escaped"><p><em>{html.escape(TOO_BIG_NOTE)}</em></p><pre>{body}</pre></div>'


class SanitizeStudentHTML(SanitizeHTML):
    """nbconvert's ``SanitizeHTML`` with the allow-list above; Markdown cells are cleaned after rendering."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tags, self.attributes = sorted(TAGS), ATTRIBUTES
        self.enabled = True
        self.tags_cleaned = 0  # in the notebook being converted (``MAX_NOTEBOOK_TAGS``)

    def preprocess(self, nb, resources):
        self.tags_cleaned = 0
        return super().preprocess(without_surrogates(nb), resources)

    def _within_bounds(self, text: str, rendered: bool = False) -> bool:
        """Whether ``text`` may go to bleach; counts its tags against the notebook's budget. A Markdown cell's
        ``rendered`` HTML is held to the tag bounds only (its source was held to ``MAX_CELL_CHARS``; an attached image
        makes its HTML longer, not harder)."""
        tags = tag_count(text)
        if (not rendered and len(text) > MAX_CELL_CHARS) or tags > MAX_CELL_TAGS \
                or self.tags_cleaned + tags > MAX_NOTEBOOK_TAGS:
            return False
        self.tags_cleaned += tags
        return True

    def sanitize_html_tags(self, html_str: str) -> str:
        """Raw cells and HTML or Markdown outputs (nbconvert's ``SanitizeHTML`` calls this)."""
        return clean(html_str) if self._within_bounds(html_str) else escaped(html_str)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            if too_big(cell.source):  # bounded before rendering too
                cell.source = escaped(cell.source)
                return cell, resources
            try:
                rendered = markdown_html(cell.source, cell.get("attachments") or {})
            except InvalidNotebook:  # an ``attachment:`` the cell does not hold: nbconvert would stop the page
                rendered = None
            if rendered is None or not self._within_bounds(rendered, rendered=True):
                cell.source = escaped(cell.source)
                return cell, resources
            cleaned = clean(rendered)
            if cleaned != rendered:  # something unsafe was there: show the cleaned rendering instead
                cell.source = cleaned
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
