"""Student text in HTML pages (feedback, formgrader's submission view) is sanitised: no script a student wrote runs.

``SanitizeStudentHTML`` is nbconvert's ``SanitizeHTML`` preprocessor (bleach) with an allow-list wide enough for
written answers (headings, lists, tables, code, emphasis, links, images) and one change for Markdown cells: a cell
is rendered to HTML first (nbconvert's own ``markdown2html``, as the templates do) and the HTML is cleaned, so that
Markdown and maths stay intact (cleaning the Markdown source would break ``$x < y$`` and ``> quotes``); only a cell
whose HTML changed (it held a script, an event handler, an ``<iframe>``, ...) is replaced by its cleaned HTML. Code
outputs keep what is safe (text, PNG and JPEG images, cleaned HTML) and lose the rest (JavaScript, SVG, widgets).

``nbgrader_config.py`` registers it on every ``HTMLExporter`` (``nbgrader generate_feedback`` and formgrader both
read that file), with nbconvert's ``HTMLExporter.sanitize_html`` left off: nbgrader's templates bypass it for
Markdown cells, and its allow-list would escape every paragraph.
"""

from __future__ import annotations

import bleach
from nbconvert.filters import markdown2html
from nbconvert.preprocessors.sanitize import SanitizeHTML

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
    "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul", "var",
})
ATTRIBUTES = {"*": ["class", "title", "align"], "a": ["href", "name", "id"], "img": ["src", "alt", "width", "height"],
              "td": ["colspan", "rowspan"], "th": ["colspan", "rowspan"], "ol": ["start"]}
PROTOCOLS = frozenset({"http", "https", "mailto", "data"})


def clean(html: str) -> str:
    """``html`` with only ``TAGS``, ``ATTRIBUTES`` and ``PROTOCOLS`` left; anything else is escaped as text."""
    return bleach.clean(html, tags=TAGS, attributes=ATTRIBUTES, protocols=PROTOCOLS, strip=False, strip_comments=True)


class SanitizeStudentHTML(SanitizeHTML):
    """nbconvert's ``SanitizeHTML`` with the allow-list above; Markdown cells are cleaned after rendering."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tags, self.attributes = sorted(TAGS), ATTRIBUTES
        self.enabled = True

    def sanitize_html_tags(self, html_str: str) -> str:
        return clean(html_str)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            rendered = markdown2html(cell.source)
            cleaned = clean(rendered)
            if cleaned != rendered:  # something unsafe was there: show the cleaned rendering instead
                cell.source = cleaned
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
