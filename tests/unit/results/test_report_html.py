"""The report's HTML pieces escape what comes from results, and inline only llem's PNGs."""

from __future__ import annotations

import pytest

from llenergymeasure.results.report_html import Html, figure, key_values, page, table, text


def test_text_escapes_markup_and_quotes() -> None:
    assert (
        text("<b a=\"1\">'&'</b>").markup == "&lt;b a=&quot;1&quot;&gt;&#x27;&amp;&#x27;&lt;/b&gt;"
    )
    assert text(None).markup == "n/a"
    assert text(Html("<i>kept</i>")).markup == "<i>kept</i>"


def test_tables_escape_every_cell_and_header() -> None:
    markup = table(["<th>"], [["<td>", None]], numeric={1}).markup
    assert "&lt;th&gt;" in markup and "&lt;td&gt;" in markup
    assert '<td class="num">n/a</td>' in markup
    assert "<script" not in key_values([("<script>", "<script>")]).markup


def test_a_figure_is_an_inline_png_only() -> None:
    with pytest.raises(ValueError, match="inline PNG"):
        figure("https://example.com/x.png", "x", "y")
    with pytest.raises(ValueError, match="inline PNG"):
        figure('data:image/png;base64,x" onerror="alert(1)', "x", "y")
    markup = figure("data:image/png;base64,AAAA", '"><script>', "c").markup
    assert 'alt="&quot;&gt;&lt;script&gt;"' in markup


def test_the_page_forbids_scripts_and_remote_loads() -> None:
    document = page("<t>", "<s>", [])
    assert "default-src 'none'; img-src data:; style-src 'unsafe-inline'" in document
    assert "<title>&lt;t&gt;</title>" in document and "<script" not in document
