"""The built book, read in a real browser (headless Chromium over the DevTools protocol).

Two groups of tests:

* ``test_checker_*``: the checker itself, on small pages written here, each with one known
  defect (so the page checks below can fail, and fail for the right reason);
* ``test_book_page``: every page of the built book (``_build/html``, or ``$CERTLAB_BOOK_HTML``)
  at a 1400 px wide window: nothing wider than the article column, no MathJax error, no
  broken link or image, no request to another host, no visible test marker, no JavaScript
  error.

Chromium is Debian's ``chromium`` package (``make chromium`` installs it). Without it, or
without a built book, or with a page older than its source, the tests skip and say why;
``make browser-test`` (part of ``make test``, after the book build) sets
``CERTLAB_REQUIRE_BROWSER=1``, which turns those skips into failures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser.bookcheck import VIEWPORT, book_pages, check_one, check_page, serve
from browser.cdp import Browser, find_chromium

ROOT = Path(__file__).resolve().parents[1]
BOOK = Path(os.environ.get("CERTLAB_BOOK_HTML", ROOT / "_build" / "html"))
REQUIRED = os.environ.get("CERTLAB_REQUIRE_BROWSER") == "1"
#: Sources of the built pages, by page: a page older than its source is stale.
SOURCE_SUFFIXES = (".ipynb", ".md")


def _skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(reason + " (CERTLAB_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        _skip_or_fail("no Chromium: install Debian's chromium package (make chromium, or "
                      "apt-get install -y chromium) or set $CHROMIUM")
    with Browser.launch() as running:
        yield running


# -- the checker on pages with known defects ----------------------------------------------

ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>t</title>
<style>body {{ margin: 0 }} article.bd-article {{ width: 600px; margin-left: 100px }}
pre {{ overflow-x: auto }}</style></head>
<body><article class="bd-article" role="main"><section><h1>Title</h1>{body}</section></article>
</body></html>"""


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    for name, body in pages.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ARTICLE.format(body=body))
    return tmp_path


def _check(browser, root: Path, page: str):
    with serve(root) as base:
        tab = browser.new_tab(*VIEWPORT)
        try:
            return check_page(tab, base, page, root)
        finally:
            tab.close()


def test_checker_passes_a_clean_page(browser, tmp_path):
    root = _site(tmp_path, {"a.html": '<p id="x">Short text, <a href="b.html#y">a link</a>, '
                                      '<a href="https://example.org/">an outside link</a>.</p>',
                            "b.html": '<p id="y">target</p>'})
    report = _check(browser, root, "a.html")
    assert report.ok, report.problems()


def test_checker_finds_overflowing_code_and_boxes(browser, tmp_path):
    long_line = "x = " + "1 + " * 120 + "1"
    root = _site(tmp_path, {"a.html": f"<pre>{long_line}</pre>"
                                      '<div style="width: 900px; height: 10px">wide</div>'})
    report = _check(browser, root, "a.html")
    kinds = sorted(item["kind"] for item in report.overflow)
    assert kinds == ["scrolls", "sticks out"], report.problems()
    scrolls = next(item for item in report.overflow if item["kind"] == "scrolls")
    assert scrolls["element"] == "pre" and scrolls["width"] > scrolls["column"]
    assert not (report.broken or report.offsite or report.markers or report.js_errors)


def test_checker_blocks_and_reports_requests_to_other_hosts(browser, tmp_path):
    root = _site(tmp_path, {"a.html": '<img src="https://example.org/logo.png" alt="">'})
    report = _check(browser, root, "a.html")
    assert report.offsite == ["request to another host (blocked): https://example.org/logo.png"]
    assert any("image did not load" in line for line in report.broken)


def test_checker_finds_broken_links_images_and_anchors(browser, tmp_path):
    root = _site(tmp_path, {"a.html": '<a href="missing.html">x</a> <a href="b.html#nowhere">y'
                                      '</a> <a href="#here">z</a> <img src="gone.png" alt="">',
                            "b.html": "<p>b</p>"})
    report = _check(browser, root, "a.html")
    assert "link to a missing file: missing.html" in report.broken
    assert "link to a missing anchor: b.html#nowhere" in report.broken
    assert "link to a missing anchor: a.html#here" in report.broken
    assert "HTTP 404: gone.png" in report.broken


def test_checker_finds_markers_raw_markup_and_untypeset_math(browser, tmp_path):
    root = _site(tmp_path, {"a.html": "<pre># NBVAL_CHECK_OUTPUT\nprint(1)</pre>"
                                      "<p>see {cite}`someone2020` and $-r_s$</p>"
                                      '<span class="math">\\(x^2\\)</span>'
                                      "<table><tr><th>zero</th><td>NaN</td></tr></table>"
                                      "<script>undefined_function()</script>"})
    report = _check(browser, root, "a.html")
    assert any("NBVAL_CHECK_OUTPUT" in m for m in report.markers), report.markers
    assert any("unrendered MyST role" in m for m in report.markers), report.markers
    assert any(m.startswith("raw TeX") for m in report.markers), report.markers
    assert any(m.startswith('NaN in 1 table cell(s), first in row "zero"') for m in report.markers)
    assert [item["kind"] for item in report.math] == ["not typeset"]
    assert len(report.js_errors) == 1 and "undefined_function" in report.js_errors[0]


def test_checker_opens_collapsed_content(browser, tmp_path):
    long_line = "y = " + "2 * " * 150 + "2"
    root = _site(tmp_path, {"a.html": f"<details><summary>Show code</summary><pre>{long_line}"
                                      "</pre></details>"})
    report = _check(browser, root, "a.html")
    assert [item["kind"] for item in report.overflow] == ["scrolls"], report.problems()


# -- every page of the built book ------------------------------------------------------------

def _book_pages() -> list[str]:
    return book_pages(BOOK) if (BOOK / "index.html").is_file() else ["(no built book)"]


def _source_of(page: str) -> Path | None:
    stem = ROOT / Path(page).with_suffix("")
    for suffix in SOURCE_SUFFIXES:
        if stem.with_suffix(suffix).is_file():
            return stem.with_suffix(suffix)
    return None


@pytest.fixture(scope="module")
def book_site(browser):
    """The built book served on localhost: (browser, base URL, anchor cache)."""
    if not (BOOK / "index.html").is_file():
        _skip_or_fail(f"no built book in {BOOK}: build it first (make html, or "
                      "jupyter-book build .)")
    with serve(BOOK) as base:
        yield browser, base, {}


@pytest.mark.parametrize("page", _book_pages())
def test_book_page(page, book_site):
    source = _source_of(page)
    built = BOOK / page
    if source is not None and source.stat().st_mtime > built.stat().st_mtime:
        _skip_or_fail(f"{page} is older than {source.relative_to(ROOT)}: rebuild the book")
    browser, base, id_cache = book_site
    report = check_one(browser, base, BOOK, page, id_cache)
    if not report.ok:
        pytest.fail(f"{page} at {VIEWPORT[0]} px wide:\n  " + "\n  ".join(report.problems()),
                    pytrace=False)
