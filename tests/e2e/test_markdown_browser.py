"""The Markdown transcripts in a real headless Chromium, rendered the stock way: every .md
the export writes from captures carrying each payload of tests/data/injection/payloads.json
in every position (content, reasoning, tool name, arguments and result, model name, system
prompt, error message, the capture's file name), and `markdown_text` (`chatcap show`) of
each exchange, go through markdown-it (CommonMark, raw HTML on) into a page; no script
runs, no dialog opens, no request leaves, and only elements plain Markdown makes are
there. The same payloads rendered as they are fire, so the page would tell.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

import analyzer
from analyzer import export
from analyzer.capture import find_browser
from analyzer.export import har

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

# The payloads and the exchanges carrying them are the unit tests' (tests/test_injection.py).
sys.path.insert(0, str(ROOT / "tests"))
_spec = importlib.util.spec_from_file_location("injection_cases", ROOT / "tests" / "test_injection.py")
cases = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cases)

# What plain Markdown (and the transcript's own <details>, <summary>, <sub>) can make.
MARKDOWN_TAGS = {
    "html", "head", "meta", "title", "body", "h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "a",
    "code", "pre", "em", "strong", "blockquote", "hr", "br", "details", "summary", "sub",
}  # fmt: skip
SAFE_PROTOCOLS = {"http:", "https:", "mailto:", "file:"}
RENDERER = MarkdownIt("commonmark", {"html": True})


def file_name(n: int, payload: str) -> str:
    """The payload as (most of) a file name: no `/`, no NUL, within the 255-byte limit."""
    name = payload.replace("/", "\u2215").replace("\x00", "")
    while len(f"{n:03d} {name}.jsonl".encode()) > 250:
        name = name[:-1]
    return f"{n:03d} {name}.jsonl"


def page(markdown: str) -> str:
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"></head><body>\n{RENDERER.render(markdown)}</body></html>\n'
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One page per exported transcript and one per payload's `markdown_text` outputs."""
    root = tmp_path_factory.mktemp("markdown")
    captures = root / "captures"
    for n, payload in enumerate(cases.PAYLOADS):
        har.jsonl(cases.hostile_exchanges(payload), captures / file_name(n, payload))
    exchanges = analyzer.load(captures)
    assert len(exchanges) == 2 * len(cases.PAYLOADS)
    transcripts = export.markdown(exchanges, root / "md")
    assert len(transcripts) == len(cases.PAYLOADS)  # one conversation per capture file
    pages = []
    for path in transcripts:
        pages.append(path.with_suffix(".html"))
        pages[-1].write_text(page(path.read_text(encoding="utf-8")), encoding="utf-8")
    for n in range(len(cases.PAYLOADS)):
        shown = [export.markdown_text(x, collapsible=c) for x in exchanges[2 * n : 2 * n + 2] for c in (True, False)]
        pages.append(root / "md" / f"show-{n:03d}.html")
        pages[-1].write_text(page("\n\n***\n\n".join(shown)), encoding="utf-8")
    return pages


@dataclass
class Visit:
    """What one page did: requests other than its own (all refused, so the network stays
    unreached), dialogs (dismissed), uncaught errors, and whether a payload's script ran."""

    uri: str
    left: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pwned: bool = False

    @property
    def fired(self) -> bool:
        return bool(self.pwned or self.left or self.dialogs)


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
def visit(browser) -> Iterator:  # type: ignore[no-untyped-def, type-arg]
    """Open a file in this test's headless Chromium tab and say what it did."""
    from playwright.sync_api import Error

    context = browser.new_context()
    tab = context.new_page()
    current = Visit("")

    def route(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url == current.uri:
            route.continue_()
        else:
            current.left.append(route.request.url)
            route.abort()

    tab.route("**/*", route)
    tab.on("dialog", lambda dialog: (current.dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("pageerror", lambda error: current.errors.append(str(error)))

    def opener(path: Path) -> tuple[Visit, object]:
        nonlocal current
        current = Visit(path.resolve().as_uri())
        for attempt in range(3):
            try:
                tab.goto(current.uri)
                break
            except Error:  # a refresh the page before scheduled cut in: go again once it is over
                if attempt == 2:
                    raise
                tab.wait_for_timeout(200)
        tab.wait_for_timeout(30)  # a handler on a failed load fires after it
        try:
            current.pwned = tab.evaluate("typeof window.__pwned") != "undefined"
        except Error:  # the page navigated away (a refresh): that is firing too
            current.pwned = True
        return current, tab

    yield opener
    context.close()


def test_control_over_40_payloads_fire_when_rendered_without_the_export(visit, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The control: each payload alone, rendered the same way without the export (52 of
    the 106 fire in Debian's Chromium 156: the rest are forged headings, links that need a
    click, terminal sequences), so the page does notice scripts, dialogs and requests."""
    fired = []
    for n, payload in enumerate(cases.PAYLOADS):
        raw = tmp_path / f"raw-{n:03d}.html"
        raw.write_text(page(payload), encoding="utf-8")
        done, _ = visit(raw)
        fired += [payload] if done.fired else []
    assert len(fired) > 40, len(fired)


def test_exported_markdown_and_show_run_nothing_send_no_request_and_make_only_markdown_elements(
    visit, rendered: list[Path]
) -> None:  # type: ignore[no-untyped-def]
    assert len(rendered) == 2 * len(cases.PAYLOADS)
    handlers = "Array.from(document.querySelectorAll('*')).flatMap(e => e.getAttributeNames()).filter(n => n.startsWith('on'))"  # fmt: skip
    for path in rendered:
        done, page = visit(path)
        assert not done.fired and done.errors == [], (path.name, done)
        tags = set(page.evaluate("Array.from(document.querySelectorAll('*'), e => e.localName)"))
        assert tags <= MARKDOWN_TAGS, (path.name, tags - MARKDOWN_TAGS)
        assert page.evaluate(handlers) == [], path.name
        protocols = set(page.evaluate("Array.from(document.links, a => a.protocol)"))
        assert protocols <= SAFE_PROTOCOLS, (path.name, protocols)
