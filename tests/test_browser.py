"""Open every page of the built book (_build/html) in headless Debian chromium and check it reads.

Served from 127.0.0.1; every request that would leave the machine is blocked and reported (the
book must read offline: MathJax comes from _static/mathjax, not a CDN). On every page: all math
typeset (each `.math` element holds an `mjx-container`, no `mjx-merror`, no raw `\\(`, `\\[` or
`$$` left in the text), no JavaScript console error or uncaught exception, no failed request, every
internal link (and its #fragment) and every image resolves. Chapter pages' Binder/Colab buttons
open notebooks/X.ipynb.

`make test` builds the book before this runs (`make browser` alone needs `make book` first); when
_build/html is missing it is built here with the strict build. Without chromium the test skips
locally and fails under CI=true (`.ci/run` installs Debian's chromium with apt; Playwright's own
browser download cannot work here).
"""

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html")).resolve()  # BOOK_HTML: another build
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium's own connections are refused by a closed network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOOPBACK = {"127.0.0.1"}
ON_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}

# Runs in the page: what the checks need, collected once per page.
COLLECT_JS = r"""
async () => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "TEXTAREA", "MJX-CONTAINER", "KBD", "SAMP"]);
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName) || el.classList.contains("highlight")) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const t = n.nodeValue;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{/.test(t)) raw.push(t.trim().slice(0, 80));
  }
  const maths = Array.from(document.querySelectorAll(".math"));
  const untypeset = maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.trim().slice(0, 80));
  const merrors = Array.from(document.querySelectorAll("mjx-merror")).map(
      e => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80));
  const imgs = Array.from(document.images);
  const images = await Promise.all(imgs.map(async img => {
    img.loading = "eager";
    try { await img.decode(); } catch (e) {}
    return [img.currentSrc || img.src, img.complete && img.naturalWidth > 0];
  }));
  return {
    n_math: maths.length,
    n_containers: maths.filter(m => m.querySelector("mjx-container")).length,
    untypeset, merrors, raw, images,
    links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
    ids: Array.from(document.querySelectorAll("[id], a[name]")).map(e => e.id || e.getAttribute("name")),
  };
}
"""

# Runs in the page after MathJax: what a reader at this window width would see overflow. Only the
# article (the chapter's text) is measured, not the navigation around it.
LAYOUT_JS = r"""
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const out = {wide_math: [], eqno_over_math: [], clipped_code: [], clipped_cells: [], raw_tables: [], chapter_refs: [],
               page_width: document.documentElement.scrollWidth, window_width: window.innerWidth};
  const label = el => (el.id || (el.querySelector("[id]") || {}).id || el.textContent.trim().slice(0, 50));
  for (const box of article.querySelectorAll("div.math")) {
    const m = box.querySelector("mjx-math");
    if (!m) continue;
    const need = m.getBoundingClientRect().width, have = box.getBoundingClientRect().width;
    if (need > have + 1) out.wide_math.push(`${label(box)}: ${Math.round(need)} px in ${Math.round(have)} px`);
    const eqno = box.querySelector(".eqno");
    if (eqno) {
      const a = eqno.getBoundingClientRect(), b = m.getBoundingClientRect();
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        out.eqno_over_math.push(label(box));
    }
  }
  for (const pre of article.querySelectorAll("pre")) {
    if (pre.scrollWidth > pre.clientWidth + 1) {
      const longest = pre.textContent.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      out.clipped_code.push(`${pre.scrollWidth} px in ${pre.clientWidth} px: ${longest.trim().slice(0, 70)}`);
    }
  }
  // A formula is measured by its mjx-math box: MathJax's hidden assistive copy inflates scrollWidth.
  for (const cell of article.querySelectorAll("td, th")) {
    const cs = getComputedStyle(cell);
    const room = cell.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const over = [...cell.querySelectorAll("mjx-math")].some(m => m.getBoundingClientRect().width > room + 1)
      || [cell, ...cell.querySelectorAll("pre, code")].some(
           el => el.tagName !== "TD" && el.tagName !== "TH" && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1);
    if (over) out.clipped_cells.push(cell.textContent.trim().slice(0, 60));
  }
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el && el !== article; el = el.parentElement)
        if (["PRE", "CODE", "SCRIPT", "STYLE"].includes(el.tagName)) return NodeFilter.FILTER_REJECT;
      return NodeFilter.FILTER_ACCEPT;
    }
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode())
    if (/\|\s*:?-{3,}:?\s*\|/.test(n.nodeValue)) out.raw_tables.push(n.nodeValue.trim().slice(0, 70));
  // Numbered chapters, from the navigation ("4. The forward pass ..."): links to them must say
  // "Chapter N", and no link may follow the bare word "chapter" or "section".
  const numbered = new Set();
  for (const a of document.querySelectorAll("nav a.reference.internal, .bd-sidebar-primary a.reference.internal"))
    if (/^\s*\d+\.\s/.test(a.textContent)) numbered.add(a.href.split("#")[0]);
  for (const a of article.querySelectorAll("a.reference.internal")) {
    if (a.closest(".prev-next-area, .prev-next-footer, nav, .toctree-wrapper")) continue;
    const text = a.textContent.trim(), [page, frag] = a.href.split("#");
    const before = (a.previousSibling && a.previousSibling.textContent || "").slice(-12);
    if (/\b(chapters?|sections?)\s*$/i.test(before) && !/^\d/.test(text))
      out.chapter_refs.push(`"${before.trim()} ${text}"`);
    else if (numbered.has(page) && page !== location.href.split("#")[0] && (!frag || frag.startsWith("ch-"))
             && !/^Chapter \d+\b/.test(text))
      out.chapter_refs.push(`"${text}" (a link to a chapter that does not say "Chapter N")`);
  }
  return out;
}
"""
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 420, "height": 860}
OPEN_ALL_JS = """
() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  document.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
}
"""


@dataclass
class PageReport:
    url: str
    n_math: int = 0
    n_containers: int = 0
    untypeset: list = field(default_factory=list)
    merrors: list = field(default_factory=list)
    raw: list = field(default_factory=list)
    images: list = field(default_factory=list)
    links: list = field(default_factory=list)
    ids: set = field(default_factory=set)
    console_errors: list = field(default_factory=list)
    desktop: dict = field(default_factory=dict)  # LAYOUT_JS at the DESKTOP window
    phone: dict = field(default_factory=dict)  # LAYOUT_JS at the PHONE window
    failed_requests: list = field(default_factory=list)
    external_requests: list = field(default_factory=list)


def build_if_missing():
    if (HTML / "index.html").exists():
        return
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    jb = Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", ".", "--all", "-W", "-n", "--keep-going"], cwd=ROOT, env=env, check=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    build_if_missing()
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        msg = f"no chromium at {CHROMIUM} (install Debian's: apt-get install chromium; .ci/run does)"
        if ON_CI:
            pytest.fail(msg + " -- required under CI=true")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def pages() -> list[str]:
    """Every HTML page of the site, relative to _build/html."""
    return sorted(
        p.relative_to(HTML).as_posix() for p in HTML.rglob("*.html")
        if not p.relative_to(HTML).parts[0].startswith(("_static", "_sources", "_images"))
    )


_REFRESH = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.I)


def visit(context, url: str, path: Path) -> PageReport:
    report = PageReport(url)
    redirect = _REFRESH.search(path.read_text(encoding="utf-8", errors="replace"))
    if redirect:  # e.g. index.html -> book/intro.html: check the target like a link, do not follow
        report.links = [urljoin(url, redirect.group(1))]
        return report
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and report.console_errors.append(m.text))
    page.on("pageerror", lambda e: report.console_errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: urlsplit(r.url).hostname in LOOPBACK
            and report.failed_requests.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and report.failed_requests.append(f"{r.url}: HTTP {r.status}"))

    def guard(route):
        u = route.request.url
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in LOOPBACK:
            report.external_requests.append(u)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    page.route("**/*", guard)
    page.set_viewport_size(DESKTOP)
    page.goto(url, wait_until="load")
    mathjax_failed = False
    if page.locator(".math").count():
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=30_000)
            page.evaluate("() => MathJax.startup.promise")
        except PlaywrightError as exc:
            mathjax_failed = f"MathJax did not start: {str(exc).splitlines()[0]}"
    data = page.evaluate(COLLECT_JS)
    page.evaluate(OPEN_ALL_JS)  # a reader may open every collapsed cell and solution: measure them open
    page.evaluate("() => document.fonts.ready.then(() => true)")  # MathJax's fonts decide the widths
    report.desktop = page.evaluate(LAYOUT_JS)
    page.set_viewport_size(PHONE)
    report.phone = page.evaluate(LAYOUT_JS)
    page.close()
    for k, v in data.items():
        setattr(report, k, set(v) if k == "ids" else v)
    if mathjax_failed:
        report.untypeset.insert(0, mathjax_failed)
    return report


@pytest.fixture(scope="module")
def site(server, browser):
    """Visit every page once; the tests below check different aspects of the reports."""
    found = pages()
    assert "index.html" in found and len(found) > 3, f"too few pages in {HTML}: {found}"
    context = browser.new_context()
    try:
        return {rel: visit(context, f"{server}/{rel}", HTML / rel) for rel in found}
    finally:
        context.close()


def _fail_if(problems: dict, what: str):
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        pytest.fail(f"{what}:\n" + "\n".join(f"  {page}: {v}" for page, v in sorted(problems.items())))


def test_every_math_element_is_typeset(site):
    _fail_if({p: r.untypeset for p, r in site.items()}, ".math elements without an mjx-container")
    _fail_if({p: (r.n_math, r.n_containers) for p, r in site.items() if r.n_math != r.n_containers},
             "count of .math vs typeset .math")
    _fail_if({p: r.merrors for p, r in site.items()}, "MathJax errors (mjx-merror)")
    _fail_if({p: r.raw for p, r in site.items()}, "raw TeX delimiters left in the text")
    assert sum(r.n_math for r in site.values()) > 0, "no math on any page: is MathJax set up at all?"


def test_no_request_leaves_the_machine(site):
    _fail_if({p: r.external_requests for p, r in site.items()}, "requests to non-loopback hosts (blocked)")


def test_no_console_errors(site):
    _fail_if({p: r.console_errors for p, r in site.items()}, "JavaScript console errors")


def test_no_failed_requests(site):
    _fail_if({p: r.failed_requests for p, r in site.items()}, "failed requests")


def test_every_internal_link_resolves(site, server):
    ids = {p: r.ids for p, r in site.items()}
    problems = {}
    for page, report in site.items():
        bad = []
        for href in report.links:
            if not href.startswith(server + "/"):
                continue  # external (not fetched), mailto:, javascript:
            target, fragment = urldefrag(href)
            rel = unquote(urlsplit(target).path).lstrip("/")
            if rel == "" or rel.endswith("/"):
                rel += "index.html"
            if not (HTML / rel).is_file():
                bad.append(f"{href} (no file {rel})")
            elif fragment and rel.endswith(".html") and unquote(fragment) not in ids.get(rel, set()):
                bad.append(f"{href} (no #{fragment} in {rel})")
        problems[page] = sorted(set(bad))
    _fail_if(problems, "broken internal links")


def test_every_image_loads(site):
    _fail_if({p: [src for src, ok in r.images if not ok] for p, r in site.items()}, "images that do not load")


def _chapter_pages():
    """(page, notebook) for the executed chapters: book/X.md with a kernelspec."""
    from launch_notebooks import chapter_paths  # book/_ext (on sys.path via conftest.py)

    return [(f"book/{md.stem}.html", f"notebooks/{md.stem}.ipynb") for md in chapter_paths()]


def test_launch_buttons_open_the_paired_notebook(site):
    import launch_notebooks  # book/_ext (on sys.path via conftest.py)

    url, _ = launch_notebooks.repository()
    repo_path = urlsplit(url).path.strip("/")  # owner/name
    problems = {}
    for page, notebook in _chapter_pages():
        if page not in site:
            continue  # not in the toc; test_notebooks.py reports that
        links = [h for h in site[page].links if "mybinder.org" in h or "colab.research.google.com" in h]
        # the chapter's launch buttons, and (assignment_links.py) its assignment's links
        assignment = "assignments/" + notebook.removeprefix("notebooks/")
        has_assignment = (ROOT / assignment).exists()
        bad = []
        for target, launch, wanted in ((notebook, [h for h in links if "/assignments/" not in h], True),
                                       (assignment, [h for h in links if "/assignments/" in h], has_assignment)):
            bad += [h for h in launch if not h.endswith("/" + target)]
            kinds = {"binder" if "mybinder" in h else "colab" for h in launch}
            if kinds != ({"binder", "colab"} if wanted else set()):
                bad.append(f"expected a Binder and a Colab link to {target}, found {sorted(kinds)}"
                           if wanted else f"links to {target}, which does not exist")
            # both name the repository of _config.yml (the one the install cells install from);
            # Binder opens JupyterLab
            bad += [f"not the configured repository {repo_path}: {h}" for h in launch if repo_path not in unquote(h)]
            bad += [f"Binder does not open JupyterLab: {h}" for h in launch
                    if "mybinder" in h and f"urlpath=lab/tree/{target}" not in unquote(h)]
        problems[page] = bad
    _fail_if(problems, "launch buttons that do not open notebooks/X.ipynb")


def test_install_cells_are_not_on_the_pages(site):
    shown = [page for page, _ in _chapter_pages()
             if page in site and "find_spec" in (HTML / page).read_text(encoding="utf-8")]
    assert not shown, f"the Colab install cell is visible on {shown}"


def _layout(site, view: str, key: str) -> dict:
    return {p: getattr(r, view).get(key, []) for p, r in site.items() if getattr(r, view)}


def test_markdown_tables_render_as_tables(site):
    _fail_if(_layout(site, "desktop", "raw_tables"), "Markdown table syntax shown as text")


def test_every_equation_fits_the_column_at_desktop_width(site):
    _fail_if(_layout(site, "desktop", "wide_math"), f"display equations wider than the text column at {DESKTOP}")
    _fail_if(_layout(site, "desktop", "eqno_over_math"), "equation numbers drawn over their formula")


def test_no_code_block_is_clipped_at_desktop_width(site):
    _fail_if(_layout(site, "desktop", "clipped_code"), f"code or output blocks that scroll sideways at {DESKTOP}")


def test_no_page_scrolls_sideways_on_a_phone(site):
    wide = {p: f"{r.phone['page_width']} px page in a {r.phone['window_width']} px window"
            for p, r in site.items() if r.phone and r.phone["page_width"] > r.phone["window_width"]}
    _fail_if(wide, f"pages wider than the window at {PHONE} (wide math and code must scroll in their own box)")


def test_no_table_cell_is_clipped_at_desktop_width(site):
    _fail_if(_layout(site, "desktop", "clipped_cells"), f"table cells whose content is cut off at {DESKTOP}")


def test_references_to_chapters_say_chapter_n(site):
    _fail_if(_layout(site, "desktop", "chapter_refs"), 'links to chapters that do not read "Chapter N"')


# A page with one of each fault the layout checks look for, and the same page done right: the
# checks must report every fault of the first and nothing on the second.
_FIXTURE = """<!doctype html><html><head><style>
  body {{ margin: 0; }} article {{ max-width: 700px; position: relative; }} pre {{ overflow-x: auto; }} div.math {{ overflow-x: auto; }}
  .eqno {{ position: absolute; right: 0; }} mjx-math {{ display: inline-block; height: 1em; }}
</style></head><body>
<nav><a class="reference internal" href="http://book.test/other.html">3. Another chapter</a></nav>
<article class="bd-article">
  {table}
  <div class="math" id="equation-eq-test"><span class="eqno">(1.1)</span>
    <mjx-container><mjx-math style="width: {math_px}px"></mjx-math></mjx-container></div>
  <pre>{code}</pre>
  <p>as {word}<a class="reference internal" href="http://book.test/other.html#ch-other">{link}</a> shows</p>
  <div style="width: {block_px}px">a block</div>
</article></body></html>"""
BAD = dict(table="<p>| a | b |\n|---|---|\n| 1 | 2 |</p><table style='table-layout: fixed; width: 300px'>"
           "<tr><td><pre style='overflow-x: auto'>" + "w" * 90 + "</pre></td></tr></table>", math_px=1200, code="x = 1  # " + "y" * 150,
           word="chapter ", link="Another chapter", block_px=800)
GOOD = dict(table="<table><tr><td>a</td><td>b</td></tr></table>", math_px=300, code="x = 1",
            word="", link="Chapter 3", block_px=380)


def _layout_of(browser, html: str, viewport) -> dict:
    page = browser.new_page(viewport=viewport)
    try:
        page.set_content(html)
        return page.evaluate(LAYOUT_JS)
    finally:
        page.close()


def test_the_layout_checks_catch_each_fault(browser):
    bad, good = _FIXTURE.format(**BAD), _FIXTURE.format(**GOOD)
    found = _layout_of(browser, bad, DESKTOP)
    for key in ("raw_tables", "wide_math", "eqno_over_math", "clipped_code", "clipped_cells", "chapter_refs"):
        assert found[key], f"{key}: the fault on the fixture page was not reported ({found})"
    assert _layout_of(browser, bad, PHONE)["page_width"] > PHONE["width"]
    bare = _FIXTURE.format(**dict(GOOD, word="", link="Another chapter"))
    assert _layout_of(browser, bare, DESKTOP)["chapter_refs"], "a chapter link by title alone was not reported"
    clean = _layout_of(browser, good, DESKTOP)
    keys = ("raw_tables", "wide_math", "eqno_over_math", "clipped_code", "clipped_cells", "chapter_refs")
    assert not any(clean[k] for k in keys), clean
    assert _layout_of(browser, good, PHONE)["page_width"] <= PHONE["width"]
