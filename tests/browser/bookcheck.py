"""Check the built book (``_build/html``) page by page in headless Chromium.

For every page the checker serves the book from a localhost HTTP server, loads the page at a
1400 x 900 viewport, waits for MathJax and the fonts, opens every collapsed block (hidden code
cells, dropdowns: what a reader can open must fit too) and reports:

* ``overflow``: content elements wider than the article column: elements that scroll or clip
  horizontally (``scrollWidth > clientWidth``: code cells, outputs, tables, display math) and
  elements whose box sticks out of the column (only the outermost is reported); code lines
  and printed table rows (runs of spaces, tabs or `` | `` between values) that wrap, measured
  at 0.6 em per character so that the verdict holds for any common monospace font;
* ``math``: MathJax errors (``mjx-merror``) and math that was never typeset;
* ``broken``: requests for files of the book that failed or answered an HTTP error, images
  that did not decode, and links to pages or anchors of the book that do not exist;
* ``offsite``: requests to any host other than the local server (blocked, and reported);
* ``markers``: visible test scaffolding (``NBVAL``), MyST roles that were not rendered
  (``{cite}`...```), raw ``$...$`` TeX outside code, ``NaN`` in table cells;
* ``js_errors``: uncaught JavaScript exceptions.

Run from the repository root to print a report (and, optionally, save screenshots)::

    python tests/browser/bookcheck.py [_build/html] [--screenshots DIR] [--page notebooks/11]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from browser.cdp import Browser, CDPError, Tab  # type: ignore[no-redef]
else:
    from .cdp import Browser, CDPError, Tab

__all__ = ["PageReport", "book_pages", "redirect_target", "serve", "check_page", "check_one",
           "check_book", "VIEWPORT"]

VIEWPORT = (1400, 900)
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", "_sphinx_design_static"}


@dataclass
class PageReport:
    """What one page of the book does wrong; an empty report means the page is fine."""

    page: str
    overflow: list[dict] = field(default_factory=list)
    math: list[dict] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    js_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    CATEGORIES = ("overflow", "math", "broken", "offsite", "markers", "js_errors")

    @property
    def ok(self) -> bool:
        return not any(getattr(self, name) for name in self.CATEGORIES)

    def problems(self) -> list[str]:
        """One line per problem, ``category: detail``."""
        lines = []
        for item in self.overflow:
            where = f" in section '{item['section']}'" if item.get("section") else ""
            unit = item.get("unit", "px")
            lines.append(f"overflow: {item['element']}{where} {item['kind']}: {item['width']} "
                         f"{unit} in a {item['column']} {unit} column: {item['text']!r}")
        for item in self.math:
            lines.append(f"math: {item['kind']}: {item['text']!r}")
        lines += [f"{name}: {item}" for name in ("broken", "offsite", "markers", "js_errors")
                  for item in getattr(self, name)]
        return lines


def book_pages(root: Path) -> list[str]:
    """Every HTML page of the built book, relative to ``root``, sorted."""
    pages = []
    for path in sorted(Path(root).rglob("*.html")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIP_DIRS:
            continue
        pages.append(rel.as_posix())
    return pages


def redirect_target(path: Path) -> str | None:
    """The target of a page that is only a ``<meta http-equiv="Refresh">`` redirect."""
    html = Path(path).read_text(errors="replace")
    match = re.search(r'http-equiv="Refresh"\s+content="\d+;\s*url=([^"]+)"', html, re.I)
    if match and "<body" not in html.lower():
        return match.group(1)
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# The in-page part of the check. It returns plain JSON.
_CHECK_JS = r"""
(async () => {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const hasMath = document.querySelector('.math') !== null;
  for (let i = 0; hasMath && i < 100 && !(window.MathJax && MathJax.startup
                                            && MathJax.startup.promise); i++) await sleep(50);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise)
    await Promise.race([MathJax.startup.promise, sleep(20000)]);
  if (document.fonts) await Promise.race([document.fonts.ready, sleep(5000)]);
  // A reader can open every collapsed block (hidden code cells, dropdowns): check them open.
  document.querySelectorAll('details:not([open])').forEach((d) => { d.open = true; });
  // MathJax's assistive MathML is invisible (clipped to 1 px) but widens its container's
  // scrollWidth: take it out of the layout for the measurements.
  const style = document.createElement('style');
  style.textContent = 'mjx-assistive-mml { display: none !important; }';
  document.head.appendChild(style);
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));

  const out = {overflow: [], math: [], images: [], markers: [], links: []};
  const article = document.querySelector('article.bd-article') || document.querySelector('main')
                  || document.body;
  const col = article.getBoundingClientRect();
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const classes = [...el.classList].filter((c) => !c.startsWith('docutils')).slice(0, 3);
    if (classes.length) s += '.' + classes.join('.');
    const cell = el.closest('.cell');
    if (cell && cell !== el) {
      const kind = el.closest('.cell_output') ? 'output' : 'input';
      const cells = [...document.querySelectorAll('.cell')];
      s = `cell ${cells.indexOf(cell) + 1} ${kind}: ` + s;
    }
    return s;
  };
  const texOf = (el) => {  // the TeX source of a typeset formula, when MathJax has it
    try {
      const items = MathJax.startup.document.getMathItemsWithin(el);
      return items.length ? 'TeX: ' + items[0].math : null;
    } catch (e) { return null; }
  };
  const snippet = (el) => ((el.tagName.toLowerCase() === 'mjx-container' && texOf(el))
                           || el.innerText || el.textContent || '').trim()
                          .replace(/\s+/g, ' ').slice(0, 90);
  const sectionOf = (el) => {
    const sec = el.closest('section');
    const h = sec && sec.querySelector('h1, h2, h3, h4');
    return h ? h.textContent.replace(/#$/, '').trim().slice(0, 60) : '';
  };
  const collapsed = (el) => {
    for (let d = el.closest('details:not([open])'); d; d = d.parentElement &&
         d.parentElement.closest('details:not([open])')) {
      const summary = d.querySelector(':scope > summary');
      if (!summary || !summary.contains(el)) return true;
    }
    return false;
  };
  const reported = [];
  for (const el of article.querySelectorAll('*')) {
    if (reported.some((a) => a.contains(el))) continue;
    // MathJax's own parts (stretchy glyphs clip on purpose): measure the formula as a whole
    if (el.parentElement && el.parentElement.closest('mjx-container')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden' || cs.position === 'fixed') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || collapsed(el)) continue;
    let problem = null;
    if (cs.overflowX !== 'visible' && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      problem = {kind: 'scrolls', width: el.scrollWidth, column: el.clientWidth};
    else if (r.right > col.right + 1.5 || r.left < col.left - 1.5)
      problem = {kind: 'sticks out', width: Math.round(r.width), column: Math.round(col.width)};
    if (problem) {
      reported.push(el);
      out.overflow.push({element: describe(el), section: sectionOf(el), text: snippet(el),
                         ...problem});
    }
  }
  // Lines of code cells and printed tables must fit the column without wrapping, in any
  // common monospace font (0.6 em per character); other printed lines may wrap.
  for (const pre of article.querySelectorAll('.cell_input pre, .cell_output pre')) {
    if (reported.some((a) => a.contains(pre))) continue;
    const cs = getComputedStyle(pre);
    const width = pre.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const fits = Math.floor(width / (0.6 * parseFloat(cs.fontSize)));
    const input = pre.closest('.cell_input') !== null;
    const long = pre.textContent.split('\n').map((l) => l.replace(/\s+$/, ''))
                    .filter((l) => l.length > fits);
    const bad = input ? long : long.filter((l) => /\S( {2,}|\t| \| )\S/.test(l.trim()));
    if (bad.length)
      out.overflow.push({element: describe(pre), section: sectionOf(pre),
                         kind: input ? `${bad.length} code line(s) wrap` : 'printed table wraps',
                         width: Math.max(...bad.map((l) => l.length)), column: fits,
                         unit: 'characters', text: bad[0].trim().slice(0, 90)});
  }
  for (const el of document.querySelectorAll('mjx-merror, [data-mjx-error]'))
    out.math.push({kind: 'MathJax error ' + (el.getAttribute('data-mjx-error') || ''),
                   text: (el.closest('mjx-container') || el).getAttribute('aria-label')
                         || el.textContent.slice(0, 90)});
  for (const el of document.querySelectorAll('.math')) {
    if (!el.querySelector('mjx-container') && !collapsed(el) && el.getClientRects().length)
      out.math.push({kind: 'not typeset', text: el.textContent.trim().slice(0, 90)});
  }
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0)
      out.images.push(img.getAttribute('src'));
  }
  const text = document.body.innerText;
  if (/NBVAL/.test(text)) {
    const line = text.split('\n').find((l) => /NBVAL/.test(l));
    out.markers.push('test marker on the page: ' + JSON.stringify(line.trim().slice(0, 90)));
  }
  const role = text.match(/\{(cite|doc|ref|numref|eq|glue|term|download)(:[a-z]+)?\}`[^`]*`/);
  if (role) out.markers.push('unrendered MyST role: ' + JSON.stringify(role[0].slice(0, 90)));
  const nanCells = [...article.querySelectorAll('td')].filter((td) => /^(nan|NaN)$/.test(
    td.textContent.trim()));
  if (nanCells.length) {
    const row = nanCells[0].closest('tr');
    const label = row && row.querySelector('th') ? row.querySelector('th').textContent.trim() : '';
    out.markers.push(`NaN in ${nanCells.length} table cell(s), first in row ` +
                     JSON.stringify(label.slice(0, 60)) + ': show a missing value as such');
  }
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('pre, code, script, style, mjx-container, .math')) continue;
    const m = node.textContent.match(/\$[^$\n]{0,80}[\\_^][^$\n]{0,80}\$/);
    if (m && parent.getClientRects().length && !collapsed(parent)) {
      out.markers.push('raw TeX: ' + JSON.stringify(m[0].slice(0, 90)));
      break;
    }
  }
  out.links = [...document.querySelectorAll('a[href]')].map((a) => a.href);
  out.ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
  return out;
})()
"""


def _ids_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        html = path.read_text(errors="replace")
        cache[path] = set(re.findall(r'\b(?:id|name)="([^"]+)"', html))
    return cache[path]


def _check_links(report: PageReport, root: Path, base: str, page: str, links: list[str],
                 own_ids: set[str], id_cache: dict[Path, set[str]]) -> None:
    seen = set()
    for href in links:
        if not href.startswith(base) or href in seen:
            continue  # other schemes and hosts are never followed (requests are checked)
        seen.add(href)
        parts = urlsplit(href)
        rel = unquote(parts.path[len(urlsplit(base).path):])
        target = root / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            report.broken.append(f"link to a missing file: {rel}")
            continue
        if parts.fragment and target.suffix == ".html":
            ids = own_ids if rel == page else _ids_of(target, id_cache)
            if unquote(parts.fragment) not in ids:
                report.broken.append(f"link to a missing anchor: {rel}#{parts.fragment}")


def check_page(tab: Tab, base: str, page: str, root: Path,
               id_cache: dict[Path, set[str]] | None = None, timeout: float = 60.0
               ) -> PageReport:
    """Load ``base + page`` in ``tab`` (a fresh tab) and check it; return the report."""
    report = PageReport(page)
    start = time.perf_counter()
    blocked: set[str] = set()

    def on_paused(params: dict) -> None:
        url = params["request"]["url"]
        if url == base + "favicon.ico":  # asked for by the browser itself; the book has none
            tab.post("Fetch.fulfillRequest", requestId=params["requestId"], responseCode=204)
        elif url.startswith(base) or url.startswith(("data:", "blob:", "about:")):
            tab.post("Fetch.continueRequest", requestId=params["requestId"])
        else:
            blocked.add(params["requestId"])
            report.offsite.append(f"request to another host (blocked): {url[:120]}")
            tab.post("Fetch.failRequest", requestId=params["requestId"],
                     errorReason="BlockedByClient")

    requests: dict[str, str] = {}

    def on_request(params: dict) -> None:
        requests[params["requestId"]] = params["request"]["url"]

    def on_response(params: dict) -> None:
        status = params["response"]["status"]
        if status >= 400:
            report.broken.append(f"HTTP {status}: {params['response']['url'][len(base):]}")

    def on_failed(params: dict) -> None:
        if params.get("canceled") or params["requestId"] in blocked:
            return
        url = requests.get(params["requestId"], "?")
        if url.startswith(base):
            report.broken.append(f"failed to load {url[len(base):]}: {params.get('errorText')}")

    def on_exception(params: dict) -> None:
        details = params["exceptionDetails"]
        text = details.get("exception", {}).get("description") or details.get("text", "")
        report.js_errors.append(text.splitlines()[0][:200] if text else "?")

    tab.on("Fetch.requestPaused", on_paused)
    tab.on("Network.requestWillBeSent", on_request)
    tab.on("Network.responseReceived", on_response)
    tab.on("Network.loadingFailed", on_failed)
    tab.on("Runtime.exceptionThrown", on_exception)
    tab.send("Fetch.enable", patterns=[{"urlPattern": "*"}])
    tab.send("Network.enable")
    tab.send("Runtime.enable")
    tab.navigate(base + page, timeout=timeout)
    found = tab.evaluate(_CHECK_JS, timeout=timeout)
    report.overflow = found["overflow"]
    report.math = found["math"]
    report.broken += [f"image did not load: {src}" for src in found["images"]]
    report.markers = found["markers"]
    _check_links(report, root, base, page, found["links"], set(found["ids"]),
                 id_cache if id_cache is not None else {})
    report.broken = sorted(set(report.broken))
    report.offsite = sorted(set(report.offsite))
    report.seconds = time.perf_counter() - start
    return report


def check_one(browser: Browser, base: str, root: Path, page: str,
              id_cache: dict[Path, set[str]] | None = None,
              screenshots: Path | None = None) -> PageReport:
    """Check one page of the book served at ``base`` from ``root``, in a fresh tab."""
    redirect = redirect_target(root / page)
    if redirect is not None:  # a bare redirect (index.html): check its target exists
        report = PageReport(page)
        if not (root / page).parent.joinpath(redirect).is_file():
            report.broken.append(f"redirect to a missing page: {redirect}")
        return report
    tab = browser.new_tab(*VIEWPORT)
    try:
        report = check_page(tab, base, page, root, id_cache)
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            tab.screenshot(screenshots / (page.replace("/", "_") + ".png"))
    except CDPError as exc:
        report = PageReport(page)
        report.js_errors.append(f"page could not be checked: {exc}")
    finally:
        tab.close()
    return report


def check_book(root: Path, pages: list[str] | None = None, screenshots: Path | None = None,
               browser: Browser | None = None) -> list[PageReport]:
    """Check ``pages`` (default: every page) of the book built in ``root``."""
    root = Path(root)
    pages = book_pages(root) if pages is None else pages
    own_browser = browser is None
    browser = browser or Browser.launch()
    id_cache: dict[Path, set[str]] = {}
    try:
        with serve(root) as base:
            return [check_one(browser, base, root, page, id_cache, screenshots)
                    for page in pages]
    finally:
        if own_browser:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default="_build/html")
    parser.add_argument("--page", action="append", help="only pages whose path contains this")
    parser.add_argument("--screenshots", type=Path, help="save a viewport screenshot per page")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "index.html").is_file():
        print(f"no built book in {root}: run `jupyter-book build .` first", file=sys.stderr)
        return 2
    pages = book_pages(root)
    if args.page:
        pages = [p for p in pages if any(s in p for s in args.page)]
    failed = 0
    for report in check_book(root, pages, args.screenshots):
        status = "ok" if report.ok else f"{len(report.problems())} problems"
        print(f"== {report.page}: {status} ({report.seconds:.1f} s)")
        for line in report.problems():
            print("   " + line)
        failed += not report.ok
    print(f"{len(pages) - failed} pages fine, {failed} with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
