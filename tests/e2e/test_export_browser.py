"""The HTML export in a real headless Chromium, opened from disk (file://): the index and a
transcript render, the search boxes filter, a transcript full of injected markup runs
nothing and sends no request, and the Content-Security-Policy holds even where the
escaping is deliberately broken.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import analyzer
from analyzer.capture import find_browser
from analyzer.conversations import conversations
from analyzer.export.htmlpage import write
from analyzer.export.transcript import Transcript, transcripts

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

# The hostile exchange and its payloads are the unit tests' (tests/test_export_html.py).
sys.path.insert(0, str(ROOT / "tests"))
from bundled import captures_as_cloned  # noqa: E402

_spec = importlib.util.spec_from_file_location("export_html_cases", ROOT / "tests" / "test_export_html.py")
cases = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

SAFE_PROTOCOLS = {"http:", "https:", "mailto:", "file:"}


@dataclass
class Opened:
    """A page and what it did: requests it asked for, those that reached the network (any
    the policy refused never do), dialogs, console messages, uncaught errors."""

    page: object
    requests: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def bundled() -> list[Transcript]:
    return transcripts(conversations(list(analyzer.load(captures_as_cloned()))))


@pytest.fixture(scope="module")
def site(bundled: list[Transcript], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    write(enumerate(bundled), out)
    write([(0, cases.hostile_transcript())], out / "hostile")
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    try:
        executable = find_browser()
    except Exception as exc:
        pytest.fail(f"the browser tests need Chromium (make test installs Debian's chromium): {exc}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser) -> Iterator:  # type: ignore[no-untyped-def]
    contexts = []

    def opener(path: Path) -> Opened:
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        contexts.append(context)
        page = context.new_page()
        opened = Opened(page)
        context.route("**/*", lambda route: (opened.sent.append(route.request.url), route.continue_()))
        page.on("request", lambda request: opened.requests.append(request.url))
        page.on("requestfailed", lambda request: request.failure == "csp" and opened.refused.append(request.url))
        page.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("console", lambda message: opened.console.append(message.text))
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        return opened

    yield opener
    for context in contexts:
        context.close()


def visible(page, selector: str) -> int:  # type: ignore[no-untyped-def]
    return page.locator(f"{selector}:visible").count()


def by_title(bundled: list[Transcript], start: str) -> Transcript:
    (found,) = [t for t in bundled if t.title.startswith(start)]
    return found


def test_index_lists_every_conversation_and_its_search_filters_rows(site: Path, bundled: list[Transcript], open_page) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    opened = open_page(site / "index.html")
    page = opened.page
    assert page.locator("h1").inner_text() == "Conversations"
    assert visible(page, "tbody tr") == len(bundled)
    assert page.locator("#count").inner_text() == f"{len(bundled)} conversations"

    def rows_with(*terms: str) -> int:
        texts = [" ".join([t.title, t.id, *dict(t.facts).values()]).lower() for t in bundled]
        return sum(all(term in text for term in terms) for text in texts)

    page.fill("#search", "lisbon")
    assert visible(page, "tbody tr") == rows_with("lisbon") >= 2
    assert page.locator("#count").inner_text() == f"{rows_with('lisbon')} of {len(bundled)} conversations"
    assert page.locator("tbody tr:visible mark.hit").count() >= rows_with("lisbon")
    page.fill("#search", "lisbon beach")
    assert visible(page, "tbody tr") == rows_with("lisbon", "beach") == 1
    page.fill("#search", "")
    assert visible(page, "tbody tr") == len(bundled) and page.locator("mark.hit").count() == 0

    target = by_title(bundled, "How long should I proof")
    page.get_by_role("link", name=target.title).click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == target.title
    assert all(url.startswith("file://") for url in opened.requests)
    assert not opened.errors and not opened.console


def test_transcript_renders_with_its_style_and_search_filters_entries(site: Path, bundled: list[Transcript], open_page) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    transcript = by_title(bundled, "How long should I proof")
    opened = open_page(site / f"{transcript.stem}.html")
    page = opened.page
    assert page.locator("h1").is_visible() and page.locator("h1").inner_text() == transcript.title
    assert visible(page, "article.entry") == len(transcript.entries)
    # The style ran (its hash matched the policy): the system font stack and the user bubble's colour.
    assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
    user = page.locator("article.user").first
    assert user.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"

    expected = sum("fridge" in f"{e.text} {e.reasoning or ''}".lower() for e in transcript.entries)
    page.click("#search")
    page.keyboard.type("fridge")
    assert visible(page, "article.entry") == expected >= 3
    assert page.locator("#count").inner_text() == f"{expected} of {len(transcript.entries)} entries"
    assert page.locator("article:visible mark.hit").first.inner_text().lower() == "fridge"
    page.fill("#search", "no such word anywhere")
    assert visible(page, "article.entry") == 0
    page.fill("#search", "")
    assert visible(page, "article.entry") == len(transcript.entries)
    assert all(url.startswith("file://") for url in opened.requests)
    assert not opened.errors and not opened.console  # no policy violation reported either


def test_search_opens_reasoning_that_matches_and_folds_it_again(site: Path, bundled: list[Transcript], open_page) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    transcript = by_title(bundled, "Is it warm enough in Lisbon")
    page = open_page(site / f"{transcript.stem}.html").page
    details = page.locator("details.reasoning")
    assert details.count() == 1 and not details.evaluate("d => d.open")
    page.fill("#search", "wants")  # only in the reasoning: "The user wants Lisbon's weekend weather"
    assert visible(page, "article.entry") == 1
    assert details.evaluate("d => d.open") and details.locator("mark.hit").inner_text() == "wants"
    page.fill("#search", "")
    assert not details.evaluate("d => d.open")


def test_streamed_replies_have_a_sparkline(site: Path, bundled: list[Transcript], open_page) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    transcript = by_title(bundled, "Is it warm enough in Lisbon")
    page = open_page(site / f"{transcript.stem}.html").page
    sparks = page.locator("svg.spark")
    assert sparks.count() == sum(bool(e.curve) for e in transcript.entries) == 2
    for n in range(sparks.count()):
        box = sparks.nth(n).bounding_box()
        assert box and box["width"] >= 100 and box["height"] >= 15
        assert sparks.nth(n).locator("title").text_content().startswith("TTFT ")
        assert sparks.nth(n).locator("polyline").evaluate("p => p.points.numberOfItems") > 3


def test_injected_markup_runs_nothing_and_loads_nothing(site: Path, open_page) -> None:  # type: ignore[no-untyped-def]
    (path,) = [p for p in (site / "hostile").glob("*.html") if p.name != "index.html"]
    for target in (path, site / "hostile" / "index.html"):
        opened = open_page(target)
        page = opened.page
        page.wait_for_timeout(200)  # an onerror handler would fire after the failed load
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert opened.dialogs == [] and opened.errors == []
        assert opened.requests == opened.sent == [target.resolve().as_uri()]
        assert page.evaluate("document.scripts.length") == 1
        assert page.evaluate("document.querySelectorAll('img, iframe, object, embed, link, base, form').length") == 0
        handlers = "Array.from(document.querySelectorAll('*')).flatMap(e => e.getAttributeNames()).filter(n => n.startsWith('on'))"  # fmt: skip
        assert page.evaluate(handlers) == []
        protocols = set(page.evaluate("Array.from(document.links, a => a.protocol)"))
        assert protocols <= SAFE_PROTOCOLS, protocols
        assert not opened.console, opened.console  # escaped, so not even the policy had to refuse anything
    row = page.locator("tbody").inner_text()  # the index shows the hostile title and model as text
    assert cases.IMG_ONERROR in row and cases.MODEL in row
    opened = open_page(path)
    page = opened.page
    assert page.locator("article.user pre").inner_text().startswith(cases.IMG_ONERROR)
    assert cases.JS_LINK in page.locator("article.assistant .markdown").last.inner_text()
    page.fill("#search", "script")  # highlighting rewrites text nodes: still only text
    assert page.locator("mark.hit").count() > 5
    page.wait_for_timeout(100)
    assert page.evaluate("typeof window.__pwned") == "undefined" and opened.dialogs == []
    assert opened.requests == opened.sent == [path.resolve().as_uri()]


def test_the_policy_blocks_markup_that_escaped_the_escaping(site: Path, open_page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Put raw markup back into a page, as an escaping bug would: the policy refuses it."""
    (path,) = [p for p in (site / "hostile").glob("*.html") if p.name != "index.html"]
    text = path.read_text(encoding="utf-8")
    slip = (
        "<script>window.__pwned = 'inline'; alert(1)</script>"
        "<img src=x onerror=\"window.__pwned = 'handler'\">"
        '<img src="https://tracker.invalid/pixel.png">'
        '<link rel="stylesheet" href="https://tracker.invalid/x.css">'
        '<a id="slip" href="javascript:window.__pwned = \'link\'">click</a>'
    )
    broken = re.sub(r"<h1>", slip + "<h1>", text, count=1)
    assert broken != text
    target = tmp_path / "broken.html"
    target.write_text(broken, encoding="utf-8")
    opened = open_page(target)
    page = opened.page
    page.click("#slip")
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined" and opened.dialogs == []
    assert opened.sent == [target.resolve().as_uri()]  # the pictures and the stylesheet never left
    pictures = {(tmp_path / "x").resolve().as_uri(), "https://tracker.invalid/pixel.png"}
    assert set(opened.refused) == {*pictures, "https://tracker.invalid/x.css"}
    assert any("Content Security Policy" in message for message in opened.console)
    assert page.locator("#search").is_visible()  # the page's own script still runs
    page.fill("#search", "script")
    assert page.locator("mark.hit").count() > 0
