"""The pieces of a report page: escaped text, tables, sections and the page shell.

Every string from a result file (a config name, a warning, a path) reaches the page
through `text()`, which escapes it; only `Html` values, built here from escaped parts,
are inserted as they are. The page is one file with its styles inline and no script,
so that it opens offline and nothing in a result can run in the reader's browser.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

PNG_DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/]*={0,2}")
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24;
  max-width: 80rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de;
  padding-bottom: 0.2rem; }
p.sub { color: #57606a; margin-top: 0; }
div.wide { overflow-x: auto; }
small { color: #57606a; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1rem 0; }
figure img { max-width: min(100%, 860px); height: auto; border: 1px solid #d0d7de; }
figcaption, .note { color: #57606a; font-size: 0.9rem; }
.warning { border-left: 4px solid #d4a72c; background: #fff8c5; padding: 0.4rem 0.8rem;
  margin: 0.5rem 0; }
.warning b { font-family: ui-monospace, monospace; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.8rem; overflow-x: auto;
  font-size: 0.85rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.88em; }
"""


@dataclass(frozen=True)
class Html:
    """A fragment of markup whose text parts are escaped already."""

    markup: str

    def __str__(self) -> str:
        return self.markup


Cell = str | Html | None


def text(value: Cell) -> Html:
    """Escaped text (quotes too); an `Html` fragment unchanged; None as `n/a`."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("n/a" if value is None else str(value), quote=True))


def join(parts: Iterable[Html], separator: str = "") -> Html:
    """Fragments one after another."""
    return Html(separator.join(p.markup for p in parts))


def tag(name: str, content: Cell, css_class: str | None = None) -> Html:
    """`<name class="...">content</name>`, the content escaped unless it is `Html`."""
    attribute = f' class="{css_class}"' if css_class else ""
    return Html(f"<{name}{attribute}>{text(content)}</{name}>")


def code(value: str) -> Html:
    """Inline code."""
    return tag("code", value)


def pre(value: str) -> Html:
    """A block of preformatted text (YAML, a command)."""
    return Html(f"<pre>{text(value)}</pre>")


def table(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: Collection[int] = ()
) -> Html:
    """A table; the columns whose index is in `numeric` are right-aligned."""
    head = join(tag("th", h) for h in header)
    body = join(
        Html(
            "<tr>"
            + join(
                tag("td", cell, "num" if i in numeric else None) for i, cell in enumerate(row)
            ).markup
            + "</tr>"
        )
        for row in rows
    )
    return Html(
        f'<div class="wide"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def key_values(rows: Iterable[tuple[str, Cell]]) -> Html:
    """A two-column table of labels and values."""
    body = join(Html(f"<tr>{tag('th', k)}{tag('td', v)}</tr>") for k, v in rows)
    return Html(f"<table><tbody>{body}</tbody></table>")


def figure(data_uri: str, alt: str, caption: str) -> Html:
    """An inline PNG (a `data:image/png;base64,` URI made by llem) with its caption."""
    if not PNG_DATA_URI.fullmatch(data_uri):
        raise ValueError("a report figure is an inline PNG")
    return Html(
        f'<figure><img src="{data_uri}" alt="{text(alt)}">'
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )


def section(title: str, *parts: Cell) -> Html:
    """`<section>` with an `<h2>` title."""
    return Html(f"<section>{tag('h2', title)}{join(text(p) for p in parts)}</section>")


def page(title: str, subtitle: str, sections: Iterable[Html]) -> str:
    """The whole document: head with inline styles, the title, the sections."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{text(title)}</title><style>{STYLE}</style></head>\n<body>"
        f"{tag('h1', title)}{tag('p', subtitle, 'sub')}"
        f"{join(sections).markup}</body></html>\n"
    )


def details(summary: str, *parts: Cell) -> Html:
    """A folded block: `summary` shown, the parts on a click."""
    return Html(f"<details>{tag('summary', summary)}{join(text(p) for p in parts)}</details>")
