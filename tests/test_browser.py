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
        launch = [h for h in site[page].links if "mybinder.org" in h or "colab.research.google.com" in h]
        bad = [h for h in launch if not h.endswith("/" + notebook)]
        kinds = {"binder" if "mybinder" in h else "colab" for h in launch}
        if kinds != {"binder", "colab"}:
            bad.append(f"expected a Binder and a Colab button, found {sorted(kinds)}")
        # both name the repository of _config.yml (the one the install cells install from);
        # Binder opens JupyterLab
        bad += [f"not the configured repository {repo_path}: {h}" for h in launch if repo_path not in unquote(h)]
        bad += [f"Binder does not open JupyterLab: {h}" for h in launch
                if "mybinder" in h and f"urlpath=lab/tree/{notebook}" not in unquote(h)]
        problems[page] = bad
    _fail_if(problems, "launch buttons that do not open notebooks/X.ipynb")


def test_install_cells_are_not_on_the_pages(site):
    shown = [page for page, _ in _chapter_pages()
             if page in site and "find_spec" in (HTML / page).read_text(encoding="utf-8")]
    assert not shown, f"the Colab install cell is visible on {shown}"
