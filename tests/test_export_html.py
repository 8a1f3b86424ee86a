"""The self-contained HTML export (analyzer/export/htmlpage.py): every bundled conversation
renders with the Markdown export's content in the same order; captured text is untrusted,
so hostile text renders inert; a Content-Security-Policy allows only the page's own script
and style by hash; the same transcripts give the same bytes.

Pages are read back with the standard library's HTML parser (a small tree below), so the
checks are about the document a browser would build, not about substrings.
tests/e2e/test_export_browser.py opens the same pages in a real Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import streamgen
from bundled import captures_as_cloned

import analyzer
from analyzer.conversations import conversations
from analyzer.export import conversation_markdown
from analyzer.export.htmlpage import conversation_html, index_html, write
from analyzer.export.transcript import Transcript, transcripts
from analyzer.metrics import format_ms
from analyzer.model import Exchange, Request, Response
from analyzer.redact import redact_text

# Hostile text, as a web page or a model could put it into a capture. Each payload that
# could run sets window.__pwned (the browser test checks it stays undefined) or calls alert.
SCRIPT_TAG = "<script>window.__pwned = 'script'</script>"
IMG_ONERROR = "<img src=x onerror=\"window.__pwned = 'img'\">"
BREAKOUT = "</pre></div></article><script>alert(1)</script><pre>"
JS_LINK = "[click me](javascript:window.__pwned='link')"
HOSTILE_LINKS = [
    JS_LINK,
    "[upper](JAVASCRIPT:alert(1))",
    "[entity](&#106;avascript:alert(1))",
    "[named](java&Tab;script:alert(1))",
    "[angle](<javascript:alert(1)>)",
    "<javascript:alert(1)>",
    "[vb](vbscript:msgbox(1))",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[file](file:///etc/passwd)",
    "[ref][r]\n\n[r]: javascript:alert(1)",
    "![pixel](https://tracker.invalid/pixel.png)",
]
SAFE_LINKS = {
    "[docs](https://example.com/docs?a=1&b=2)": "https://example.com/docs?a=1&b=2",
    "[mail](mailto:someone@example.com)": "mailto:someone@example.com",
    "[next](other.html#part)": "other.html#part",
}
RAW_HTML = (
    '<iframe src="javascript:alert(1)"></iframe> <svg onload="alert(1)"></svg> '
    '<a href="javascript:alert(1)">raw link</a> <link rel="stylesheet" href="https://tracker.invalid/x.css"> '
    "<style>@import url(https://tracker.invalid/y.css);</style> "
    '<meta http-equiv="refresh" content="0;url=https://tracker.invalid/"> <base href="https://tracker.invalid/">'
)
ATTRIBUTE_BREAKOUT = "\"'><script>alert(1)</script>"
SECRET = "sk-proj-HTMLexportSECRET0123456789abcdef"
# Text a page must show as typed, every character a person would see escaped.
USER_TEXT = f"{IMG_ONERROR} & {SCRIPT_TAG} my key is {SECRET}"
SYSTEM_TEXT = f"{BREAKOUT}\n<!-- comment --> ]]> {SCRIPT_TAG}"
TOOL_RESULT = f'{{"html": "{BREAKOUT}", "note": "<b>bold</b>"}}'
TOOL_ARGUMENTS = orjson.dumps({"query": SCRIPT_TAG, "img": IMG_ONERROR}).decode()
REASONING = f"Thinking about {SCRIPT_TAG} and {IMG_ONERROR}."
ANSWER = "\n\n".join(
    [
        "# Heading",
        f"Raw HTML inline: {SCRIPT_TAG} {IMG_ONERROR}",
        RAW_HTML,
        f"Your key {SECRET} works.",
        *HOSTILE_LINKS,
        *SAFE_LINKS,
        "**done**",
    ]
)
MODEL = f"gpt-4o{ATTRIBUTE_BREAKOUT}"
CALL_ID = f"call_{ATTRIBUTE_BREAKOUT}"


def sse(events: list[dict[str, Any]], gap_ms: float = 25.0) -> Response:
    """A chat/completions stream, one network read per event arriving every `gap_ms`."""
    body, reads = b"", []
    for n, event in enumerate([*events, None]):
        body += b"data: " + (orjson.dumps(event) if event is not None else b"[DONE]") + b"\n\n"
        reads.append((300.0 + n * gap_ms, len(body)))
    return Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)


def hostile_exchange() -> Exchange:
    """One chat/completions exchange whose request and streamed reply carry the payloads above:
    in the system prompt, the user message, a tool call sent back and its result, the model
    name, a tool call's name and id, the reasoning and the answer (raw HTML and links)."""
    messages = [
        {"role": "system", "content": SYSTEM_TEXT},
        {"role": "user", "content": USER_TEXT},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": CALL_ID, "type": "function", "function": {"name": "search", "arguments": TOOL_ARGUMENTS}}
            ],
        },
        {"role": "tool", "tool_call_id": CALL_ID, "content": TOOL_RESULT},
    ]
    request = Request(
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        headers=[("content-type", "application/json")],
        body=orjson.dumps({"model": MODEL, "stream": True, "messages": messages}),
    )
    envelope = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1760000000, "model": MODEL}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"reasoning_content": REASONING[n : n + 16]} for n in range(0, len(REASONING), 16)]
    deltas += [{"content": ANSWER[n : n + 40]} for n in range(0, len(ANSWER), 40)]
    deltas.append(
        {"tool_calls": [{"index": 0, "id": CALL_ID, "type": "function",
                         "function": {"name": f"lookup{ATTRIBUTE_BREAKOUT}", "arguments": TOOL_ARGUMENTS}}]}
    )  # fmt: skip
    events = [{**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    events.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return Exchange(id="hostile#1", source="<hostile>", format="sse-text", request=request, response=sse(events))


def hostile_transcript() -> Transcript:
    (found,) = transcripts(conversations([hostile_exchange()]))
    return found


# A small DOM from the standard library's parser: enough to ask what elements, attributes
# and text a browser would find.
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})


@dataclass(slots=True)
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)
    parent: Node | None = None

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                    found.append(child)
                found += child.all(tag, cls)
        return found

    def inside(self, tag: str) -> bool:
        node = self.parent
        while node is not None:
            if node.tag == tag:
                return True
            node = node.parent
        return False


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), parent=self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Node(tag, dict(attrs), parent=self.current))

    def handle_endtag(self, tag: str) -> None:
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None and node.parent is not None, f"</{tag}> closes nothing open"
        self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(page: str) -> Node:
    builder = _Builder()
    builder.feed(page)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> left open"
    return builder.root


# Markdown syntax: text without any of it renders as itself (CommonMark).
MARKUP = re.compile(r"[*_\[\]#>`~|<\\&]|^\s*([-+=]|\d+[.)])(\s|$)", re.M)


def words(text: str) -> str:
    return " ".join(text.split())


def json_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def sha256_source(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


@pytest.fixture(scope="module")
def bundled() -> list[Transcript]:
    return transcripts(conversations(list(analyzer.load(captures_as_cloned()))))


def test_every_bundled_conversation_renders_its_entries_in_order(bundled: list[Transcript]) -> None:
    assert len(bundled) > 20
    for transcript in bundled:
        page = parse(conversation_html(transcript))
        (title,) = page.all("h1")
        assert words(title.text()) == words(redact_text(transcript.title))
        articles = page.all("article")
        assert [a.attrs["data-role"] for a in articles] == [e.role for e in transcript.entries], transcript.id
        facts = dict(zip([d.text() for d in page.all("dt")], [d.text() for d in page.all("dd")], strict=True))
        assert facts == dict(transcript.facts)


def test_headings_follow_the_markdown_export(bundled: list[Transcript]) -> None:
    """The same headings, in the same order, as conversation_markdown's `###` lines and notes."""
    for transcript in bundled:
        markdown = conversation_markdown(transcript)
        expected = [
            re.sub(r"[^a-z0-9()]+", "", line.removeprefix("### ").replace("\\", "").lower())
            for line in markdown.splitlines()
            if line.startswith("### ") or line.startswith("> *")
        ]
        page = parse(conversation_html(transcript))
        got = [re.sub(r"[^a-z0-9()]+", "", (a.all("h2") or a.all("p"))[0].text().lower()) for a in page.all("article")]
        assert got == expected, transcript.id


def test_content_of_every_entry_is_shown(bundled: list[Transcript]) -> None:
    for transcript in bundled:
        page = parse(conversation_html(transcript))
        for entry, article in zip(transcript.entries, page.all("article"), strict=True):
            shown = article.text()
            if entry.role in ("system", "user", "note"):
                assert redact_text(entry.text) in shown  # preformatted: exactly as captured
            elif entry.text and entry.role == "assistant":  # rendered as Markdown
                (rendered,) = article.all("div", "markdown")[-1:]
                if not MARKUP.search(entry.text):  # text without Markdown syntax reads the same
                    assert words(rendered.text()) == words(redact_text(entry.text))
            if entry.reasoning:
                (details,) = article.all("details", "reasoning")
                assert "open" not in details.attrs and details.all("summary")[0].text() == "Reasoning"
                if not MARKUP.search(entry.reasoning):
                    assert words(redact_text(entry.reasoning)) in words(details.text())
            else:
                assert not article.all("details")
            blocks = [pre.text() for pre in article.all("pre", "json")]
            expected = [c.arguments for c in entry.calls]
            if entry.role in ("tool", "error"):
                expected.insert(0, entry.text)
            assert [json_or_text(b) for b in blocks] == [json_or_text(redact_text(e)) for e in expected]
            for call in entry.calls:
                assert f"Tool call {call.name}" in words(shown) and (call.id or "") in shown
            if entry.role == "tool":
                assert words(f"Tool result {entry.call_name or '?'}") in words(article.all("h2")[0].text())
            if entry.footer:
                (footer,) = article.all("div", "footer")
                assert " · ".join(entry.footer) in footer.text()


def test_anthropic_tool_conversation_shows_reasoning_call_and_result(bundled: list[Transcript]) -> None:
    (transcript,) = [t for t in bundled if t.title.startswith("Is it warm enough in Lisbon")]
    page = parse(conversation_html(transcript))
    asking, result, answer = (page.all("article")[n] for n in (2, 3, 4))
    assert "The user wants Lisbon's weekend weather" in asking.all("details")[0].text()
    assert orjson.loads(asking.all("pre", "json")[0].text()) == {"city": "Lisbon", "days": 2}
    assert "get_forecast" in result.all("h2")[0].text()
    assert orjson.loads(result.all("pre", "json")[0].text())["saturday"] == {"high_c": 24, "sky": "sunny"}
    assert "good beach weather" in answer.all("div", "markdown")[0].text()


def test_assistant_markdown_is_rendered_and_user_text_is_not() -> None:
    exchange = hostile_exchange()
    page = parse(conversation_html(hostile_transcript()))
    answer = next(a for a in page.all("article") if a.attrs["data-role"] == "assistant" and a.all("div", "markdown"))
    assert [h.text() for h in answer.all("h1")] == ["Heading"]
    assert [s.text() for s in answer.all("strong")] == ["done"]
    user = next(a for a in page.all("article") if a.attrs["data-role"] == "user")
    (pre,) = user.all("pre", "plain")
    assert pre.text() == USER_TEXT.replace(SECRET, redact_text(SECRET)) and not user.all("img")
    assert exchange.reconstruct().choices[0].content == ANSWER  # the payloads reached the reply intact


def test_hostile_text_renders_inert() -> None:
    transcript = hostile_transcript()
    html_text = conversation_html(transcript)
    page = parse(html_text)
    (script,) = page.all("script")
    assert "src" not in script.attrs and "__pwned" not in script.text() and "alert" not in script.text()
    for tag in ("img", "iframe", "svg", "link", "base", "object", "embed", "form"):
        found = [n for n in page.all(tag) if not (tag == "svg" and "spark" in n.classes)]
        assert not found, tag
    metas = [m.attrs for m in page.all("meta")]
    assert not [m for m in metas if (m.get("http-equiv") or "").lower() == "refresh"]
    assert len(page.all("style")) == 1
    for node in page.all():
        assert not [name for name in node.attrs if name.lower().startswith("on")], node.tag
    assert "&lt;script&gt;window.__pwned = &#x27;script&#x27;&lt;/script&gt;" in html_text
    assert "&lt;img src=x onerror=&quot;window.__pwned = &#x27;img&#x27;&quot;&gt;" in html_text
    shown = page.text()
    assert SCRIPT_TAG in shown and IMG_ONERROR in shown and BREAKOUT in shown  # visible, as text
    assert JS_LINK in shown  # the link was refused and its source shown as text


def test_links_are_only_http_mailto_or_relative() -> None:
    page = parse(conversation_html(hostile_transcript()))
    hrefs = [a.attrs.get("href") or "" for a in page.all("a")]
    for href in hrefs:
        assert urlsplit(href).scheme in ("", "http", "https", "mailto"), href
        assert not re.match(r"\s*(javascript|vbscript|data|file):", href, re.I), href
    for expected in SAFE_LINKS.values():
        assert expected in hrefs
    assert "https://tracker.invalid/pixel.png" in hrefs  # a picture becomes a link, never a load
    refused = {"click me", "upper", "entity", "named", "angle", "vb", "data", "file", "ref", "raw link"}
    assert not [a.text() for a in page.all("a") if a.text() in refused]
    assert all((a.attrs.get("rel") or "").startswith("noopener") for a in page.all("a") if a.inside("article"))


def test_secrets_are_redacted_in_text_and_in_markdown() -> None:
    pages = [conversation_html(hostile_transcript()), index_html([hostile_transcript()])]
    for page in pages:
        assert SECRET not in page and "HTMLexportSECRET" not in page
    placeholder = redact_text(SECRET)
    articles = {a.attrs["data-role"]: a for a in parse(pages[0]).all("article")}
    assert placeholder in articles["user"].all("pre")[0].text()
    assert f"Your key {placeholder} works." in articles["assistant"].all("div", "markdown")[-1].text()


def test_content_security_policy_allows_only_the_pages_own_script_and_style(bundled: list[Transcript]) -> None:
    for html_text in (conversation_html(bundled[0]), conversation_html(hostile_transcript()), index_html(bundled)):
        page = parse(html_text)
        (meta,) = [m for m in page.all("meta") if m.attrs.get("http-equiv") == "Content-Security-Policy"]
        policy = {
            part.split()[0]: part.split()[1:] for part in (meta.attrs["content"] or "").split(";") if part.strip()
        }
        (script,), (style,) = page.all("script"), page.all("style")
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == [f"'{sha256_source(script.text())}'"]
        assert policy["style-src"] == [f"'{sha256_source(style.text())}'"]
        assert policy["img-src"] == ["data:"]
        assert policy["base-uri"] == ["'none'"]
        # The policy must come before anything it governs.
        assert html_text.index("Content-Security-Policy") < html_text.index("<style>") < html_text.index("<script>")


def test_nothing_external_is_referenced(bundled: list[Transcript]) -> None:
    for html_text in [conversation_html(t) for t in bundled] + [index_html(bundled)]:
        page = parse(html_text)
        for node in page.all():
            for name in ("src", "srcset", "data", "action", "formaction", "poster"):
                assert name not in node.attrs, (node.tag, name)
        assert "@import" not in page.all("style")[0].text() and "url(" not in page.all("style")[0].text()
        assert not [n for n in page.all("link")]


def test_sparkline_draws_the_curve(bundled: list[Transcript]) -> None:
    checked = 0
    for transcript in bundled:
        page = parse(conversation_html(transcript))
        for entry, article in zip(transcript.entries, page.all("article"), strict=True):
            sparks = article.all("svg", "spark")
            if not entry.curve:
                assert not sparks
                continue
            (svg,) = sparks
            (line,) = svg.all("polyline")
            points = [tuple(map(float, p.split(","))) for p in (line.attrs["points"] or "").split()]
            assert len(points) == len(entry.curve) + 2  # the start, the wait until the first text, the chunks
            xs, ys = [x for x, _ in points], [y for _, y in points]
            assert xs[0] == 0 and xs[-1] == float(svg.attrs["width"] or 0) and xs == sorted(xs)
            assert ys == sorted(ys, reverse=True) and ys[0] == ys[1] > ys[-1]  # characters only grow
            title = svg.all("title")[0].text()
            assert title.startswith(f"TTFT {format_ms(entry.curve[0][0])}, ")
            assert f"streamed for {format_ms(entry.curve[-1][0] - entry.curve[0][0])}" in title
            assert f"{entry.curve[-1][1]:,} characters" in title
            checked += 1
    assert checked > 20


def test_hostile_reply_has_a_sparkline() -> None:
    transcript = hostile_transcript()
    (reply,) = [e for e in transcript.entries if e.origin == "reply"]
    assert reply.curve and parse(conversation_html(transcript)).all("svg", "spark")


def test_index_lists_every_conversation_with_a_link(bundled: list[Transcript], tmp_path: Path) -> None:
    written = write(enumerate(bundled), tmp_path)
    assert [p.name for p in written] == [f"{t.stem}.html" for t in bundled] + ["index.html"]
    page = parse((tmp_path / "index.html").read_text(encoding="utf-8"))
    rows = page.all("tbody")[0].all("tr")
    assert len(rows) == len(bundled)
    for transcript, row in zip(bundled, rows, strict=True):
        (link,) = row.all("a")
        assert (tmp_path / (link.attrs["href"] or "")).is_file()
        assert link.text() == redact_text(transcript.title)
        cells = [td.text() for td in row.all("td")]
        facts = dict(transcript.facts)
        assert cells[1:] == [
            facts["started"],
            facts["models"],
            str(len(transcript.exchanges)),
            str(sum(e.role in ("system", "user", "assistant", "tool") for e in transcript.entries)),
        ]


def test_the_index_follows_the_places_the_transcripts_come_with_not_the_order_they_come_in(
    bundled: list[Transcript], tmp_path: Path
) -> None:
    """The exports write a conversation as soon as its last exchange is read: in any order."""
    shuffled = list(enumerate(bundled))
    random.Random(7).shuffle(shuffled)
    assert shuffled != list(enumerate(bundled))
    assert [p.read_bytes() for p in write(shuffled, tmp_path / "shuffled")] == [
        p.read_bytes() for p in write(enumerate(bundled), tmp_path / "in order")
    ]


def test_output_is_byte_stable(bundled: list[Transcript], tmp_path: Path) -> None:
    again = transcripts(conversations(list(analyzer.load(captures_as_cloned()))))
    first = [p.read_bytes() for p in write(enumerate(bundled), tmp_path / "a")]
    second = [p.read_bytes() for p in write(enumerate(again), tmp_path / "b")]
    assert first == second
    assert conversation_html(hostile_transcript()) == conversation_html(hostile_transcript())


HOSTILE_ATOMS = (
    "<script>", "</script>", "<img src=x onerror=alert(1)>", "</pre>", "</article>", "<!--", "-->", "]]>",
    "&", "&amp;", "&lt;", '"', "'", "`", "<", ">", "javascript:", "[x](", ")", "![", "\n", "\n\n", " ", "word",
    "\x00", "\r", "\u2028", "😀", "<style>", "<a href=", "onerror=", "<svg onload=alert(1)>", "%3Cscript%3E",
)  # fmt: skip


@pytest.mark.parametrize("seed", range(120))
def test_seed_generated_streams_render_inert_with_their_text(seed: int) -> None:
    """Streams from tests/streamgen.py with HTML-hostile atoms in every text, the user's
    message made of the same atoms: the parsed page has only its own script, no handler, no
    unsafe link; the user's text and each tool call's arguments come back exactly."""
    stream = streamgen.generate(seed, texts=HOSTILE_ATOMS)
    rng = random.Random(seed)
    question = "".join(rng.choice(HOSTILE_ATOMS) for _ in range(rng.randint(1, 40)))
    request = Request(
        method="POST",
        url="https://api.openai.com/v1/chat/completions",
        body=orjson.dumps({"model": stream.model, "messages": [{"role": "user", "content": question}]}),
    )
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=stream.body)
    exchange = Exchange(id=f"gen#{seed}", source="<streamgen>", format="sse-text", request=request, response=response)
    (transcript,) = transcripts(conversations([exchange]))
    page = parse(conversation_html(transcript))
    assert len(page.all("script")) == 1 and not page.all("img") and not page.all("iframe")
    for node in page.all():
        assert not [name for name in node.attrs if name.lower().startswith("on")], node.tag
    for link in page.all("a"):
        assert urlsplit(link.attrs.get("href") or "").scheme in ("", "http", "https", "mailto")
    articles = page.all("article")
    assert [a.attrs["data-role"] for a in articles] == [e.role for e in transcript.entries]
    user = articles[0].all("pre", "plain")
    if question:
        assert user[0].text() == redact_text(question)
    for entry, article in zip(transcript.entries, articles, strict=True):
        blocks = [pre.text() for pre in article.all("pre", "json")]
        assert len(blocks) == len(entry.calls)
        for call, block in zip(entry.calls, blocks, strict=True):
            assert json_or_text(block) == json_or_text(redact_text(call.arguments))
