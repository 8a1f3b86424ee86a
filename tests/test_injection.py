"""Captured text is untrusted wherever chatcap shows it (issue 19, item 12).

- CSV tables: a cell that a spreadsheet would read as a formula (it starts with = + - @,
  tab or CR) is written with a leading single quote, as OWASP recommends; numbers stay
  numbers; Parquet keeps the text exact.
- Terminal: `summary` and `show` print no control character from a capture (ESC, BEL, C1
  codes come out as visible escapes) and no Rich markup from a capture takes effect.
- Markdown: the exported transcript, rendered by a stock CommonMark renderer with raw HTML
  on, holds no HTML of the capture's, no image, no link but http(s), mailto or relative
  ones, and exactly one heading per transcript entry; user, system and tool text and tool
  arguments come back exactly, fenced. tests/e2e/test_markdown_browser.py opens the same
  files in Chromium.

`hostile_exchanges(text)` puts one text in every position a capture can carry it.
"""

from __future__ import annotations

import csv
import itertools
import re
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import export
from analyzer.export import har
from analyzer.model import Exchange, Request, Response

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = orjson.loads((ROOT / "tests" / "data" / "injection" / "payloads.json").read_bytes())


def _stream(events: list[dict[str, Any]]) -> Response:
    body, reads = b"", []
    for n, event in enumerate([*events, None]):
        body += b"data: " + (orjson.dumps(event) if event is not None else b"[DONE]") + b"\n\n"
        reads.append((200.0 + 20 * n, len(body)))
    return Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads)


def hostile_exchanges(text: str, source: str = "<hostile>") -> list[Exchange]:
    """Two chat/completions exchanges of one conversation carrying `text` in every position:
    model names, system prompt, user message, an assistant message sent back (content,
    reasoning, tool call id, name and arguments), the tool result, and a streamed reply
    (reasoning, content, a tool call, the finish reason); then the same request answered
    with an API error whose message and type are `text`. The request sets temperature -0.5."""
    call = {"id": text, "type": "function", "function": {"name": text, "arguments": orjson.dumps({"q": text}).decode()}}
    messages = [
        {"role": "system", "content": text},
        {"role": "user", "content": text},
        {"role": "assistant", "content": text, "reasoning_content": text, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": text, "content": text},
    ]
    body = orjson.dumps({"model": text, "stream": True, "temperature": -0.5, "messages": messages})
    request = Request(method="POST", url="https://api.example.com/v1/chat/completions", body=body,
                      headers=[("content-type", "application/json")])  # fmt: skip
    envelope = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": 1_760_000_000, "model": text}
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "reasoning_content": text},
        {"content": text},
        {"tool_calls": [{"index": 0, "id": text, "type": "function", "function": {"name": text, "arguments": text}}]},
    ]
    events = [{**envelope, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    events.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": text}]})
    error = orjson.dumps({"error": {"message": text, "type": text, "code": None}})
    failed = Response(status=400, headers=[("content-type", "application/json")], body=error)
    return [
        Exchange(id=f"{source}#1", source=source, format="test", request=request, response=_stream(events)),
        Exchange(id=f"{source}#2", source=source, format="test", request=request, response=failed),
    ]


# -- CSV: formula injection ------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Text with no credential shape in it, so redaction leaves it as it is.
CELL_TEXT = st.tuples(
    st.sampled_from([*FORMULA_STARTS, "'", ""]),
    st.text(alphabet="=+-@\t\r\n ,;\"'|!()xyz019.", max_size=30),
).map("".join)


def csv_cells(directory: Path) -> dict[str, list[dict[str, str]]]:
    tables = {}
    for path in sorted(directory.glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            tables[path.stem] = list(csv.DictReader(handle))
    return tables


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=CELL_TEXT)
def test_csv_cells_never_start_a_formula_and_quoted_text_reads_back(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        export.tables(hostile_exchanges(text), out / "csv", "csv")
        export.tables(hostile_exchanges(text), out / "parquet", "parquet")
        tables = csv_cells(out / "csv")
        assert sorted(tables) == ["chunks", "exchanges", "messages", "tool_calls"]
        for name, rows in tables.items():
            for row in rows:
                for column, cell in row.items():
                    assert not cell.startswith(FORMULA_STARTS) or NUMBER.fullmatch(cell), (name, column, cell)
        quoted = "'" + text if text.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(text) else text
        (user,) = [row for row in tables["messages"] if row["role"] == "user"]
        assert user["content"] == quoted
        if text.strip():  # a blank model name is no model name
            assert {row["requested_model"] for row in tables["exchanges"]} == {quoted}
        parquet = pd.concat(pd.read_parquet(part) for part in (out / "parquet" / "messages").glob("date=*/*.parquet"))
        assert list(parquet.loc[parquet["role"] == "user", "content"]) == [text]  # Parquet stays exact
        numbers = pd.read_csv(out / "csv" / "exchanges.csv")
        assert pd.api.types.is_float_dtype(numbers["temperature"]) and list(numbers["temperature"]) == [-0.5, -0.5]


# -- Terminal: control sequences and Rich markup ------------------------------------------------

TERMINAL = [p for p in PAYLOADS if re.search(r"[\x1b\x9b\u202a-\u202e\u2066-\u2069]|\[/?(link|bold)", p)]
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and style: all Rich itself writes to a terminal
# C0 but tab and newline, DEL, C1, and the bidi overrides and isolates that reorder what is shown.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_capture(directory: Path) -> Path:
    """A capture file whose name and every field carry the terminal payloads."""
    text = " ".join(TERMINAL)
    name = "".join(TERMINAL).replace("/", "_")[:150] + ".jsonl"
    path = directory / name
    har.jsonl(hostile_exchanges(text, source=name), path)
    return path


def chatcap(*args: str, color: bool) -> tuple[str, str]:
    """The real CLI, its output off a terminal, or forced to be a colour terminal's."""
    from click.testing import CliRunner

    from analyzer.cli import main

    env = {"FORCE_COLOR": "1", "TERM": "xterm-256color"} if color else {"NO_COLOR": "1", "TERM": "dumb"}
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def test_terminal_payloads_reach_every_field_of_the_capture(tmp_path: Path) -> None:
    import analyzer

    (exchange, failed) = analyzer.load(terminal_capture(tmp_path))
    rec = exchange.reconstruct()
    assert "\x1b]52;c;" in rec.served_model and "\x1b]52;c;" in rec.choices[0].content
    assert "\x1b]52;c;" in exchange.id and "[link=" in failed.reconstruct().error["message"]


def test_summary_and_show_write_no_control_character_and_no_live_rich_markup(tmp_path: Path) -> None:
    path = str(terminal_capture(tmp_path))
    commands = [["summary", path], ["summary", path, "--last", "0"], ["summary", path, "--all"], ["show", path],
                ["show", path, "--id", "#2"]]  # fmt: skip
    for command in commands:
        for color in (False, True):
            stdout, stderr = chatcap(*command, color=color)
            for stream in (stdout, stderr):
                assert not CONTROL.findall(SGR.sub("", stream)), (command, color, CONTROL.findall(stream)[:5])
                assert "\x1b]8;" not in stream  # no hyperlink, not even one of Rich's own
            assert "␛]52;c;cGF5bG9hZA==" in stdout  # the sequence shown as visible text
            if command[0] == "show":
                assert "[link=https://tracker.invalid/]rich link[/link]" in stdout  # markup shown as typed


# -- Markdown: what a stock CommonMark renderer makes of an exported transcript ---------------------

# Pieces of Markdown and HTML that hostile text is made of; a property test strings them together.
MARKDOWN_ATOMS = (
    "<script>window.__pwned=1</script>", "<img src=x onerror=alert(1)>", "<", ">", "</", "<!--", "-->", "<?", "<!X",
    "<a href='javascript:alert(1)'>", "<details>", "</details>", "<sub>", "</sub>", "<pre>", "</pre>",
    "[", "]", "(", ")", "![", "](", "javascript:alert(1)", "JaVa&#115;cript:", "https://tracker.invalid/p.png",
    "<https://example.com/a>", "[r]: ", "[r]", "data:text/html,x", "mailto:a@b.c", "`", "``", "```", "~~~", "\\",
    "#", "## assistant", "### User", "User", "===", "---", "***", "- ", "1. ", "> ", "|", "| a | b |\n|---|---|\n",
    "    ", "\t", "\n", "\n\n", "\r", "\r\n", "\u2028", "\x00", " ", "word", "&amp;", "&lt;", "&#60;", "*", "_",
)  # fmt: skip
HOSTILE_TEXT = st.lists(st.sampled_from(MARKDOWN_ATOMS), min_size=1, max_size=40).map("".join)
OWN_HTML = {"<sub>", "</sub>", "<details><summary>Reasoning</summary>", "</details>"}
SAFE_LINK = re.compile(r"(https?:|mailto:|[^:]*$|[^:]*[/?#])", re.I)  # a scheme allowed, or none before / ? #


def rendered(markdown: str) -> list[Any]:
    """markdown-it's tokens for the file: CommonMark, raw HTML on, every link accepted (so a
    link any renderer would make shows up), with the children of inline tokens in line."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True})
    parser.validateLink = lambda url: True
    tokens = []
    for token in parser.parse(markdown):
        tokens += [token, *(token.children or [])]
    return tokens


def inert_problems(markdown: str) -> list[str]:
    problems = []
    for token in rendered(markdown):
        if token.type in ("html_block", "html_inline") and token.content.strip() not in OWN_HTML:
            problems.append(f"raw HTML {token.content!r}")
        if token.type == "image":
            problems.append(f"picture {token.attrGet('src')!r}")
        if token.type == "link_open" and not SAFE_LINK.match(str(token.attrGet("href"))):
            problems.append(f"link {token.attrGet('href')!r}")
    return problems


def headings(markdown: str) -> list[tuple[str, str]]:
    """(h1 | h2 | h3, the text a reader sees) of each heading above h4."""
    from markdown_it import MarkdownIt

    found = []
    tokens = MarkdownIt("commonmark", {"html": True}).parse(markdown)
    for opening, content in itertools.pairwise(tokens):
        if opening.type == "heading_open" and opening.tag < "h4":
            text = "".join(
                c.content for c in content.children or [] if c.type in ("text", "text_special", "code_inline")
            )
            found.append((opening.tag, text))
    return found


def fenced(markdown: str) -> list[str]:
    return [t.content for t in rendered(markdown) if t.type == "fence"]


def _reading(tokens: Any) -> list[Any]:
    return [(t.type, t.tag, t.nesting, t.content, t.markup, t.map, t.attrs, _reading(t.children or [])) for t in tokens]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from([atom for atom in MARKDOWN_ATOMS if "|" not in atom]), max_size=40).map("".join))
def test_text_without_a_pipe_reads_the_same_with_tables_or_without(text: str) -> None:
    """safemd reads a text with both parsers only when it holds a `|` (a GFM table needs one)."""
    from analyzer.export.safemd import _PARSERS, _parsers

    plain, tables = _PARSERS
    assert _parsers(text) == (plain,)
    assert _reading(tables.parse(text)) == _reading(plain.parse(text))
    assert _parsers(text + "|") == _PARSERS
    table = "| a | b |\n|---|---|\n"  # where a pipe makes a table, the readings differ
    assert _reading(tables.parse(table)) != _reading(plain.parse(table))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE_TEXT)
def test_markdown_transcript_renders_no_html_picture_or_unsafe_link_and_only_its_own_headings(text: str) -> None:
    from analyzer.conversations import conversations
    from analyzer.export.transcript import heading, pretty_json, transcripts

    (transcript,) = transcripts(conversations(hostile_exchanges(text)))
    markdown = export.conversation_markdown(transcript)
    assert inert_problems(markdown) == []
    own = [(("h1", " ".join(transcript.title.split())))]
    for entry in transcript.entries:
        if entry.role == "tool":
            label = f"Tool result: {' '.join((entry.call_name or '?').split()) or '?'}"
            own.append(("h3", label + (f" ({' '.join(entry.call_id.split())})" if entry.call_id else "")))
        elif entry.role != "note":
            own.append(("h3", " ".join(heading(entry).split())))
    assert [tag for tag, _ in headings(markdown)] == [tag for tag, _ in own]
    blocks = fenced(markdown)
    normal = re.sub(r"\r\n?", "\n", text).replace("\x00", "\ufffd")  # as CommonMark reads any text
    for shown in (normal, pretty_json(normal)):  # user and system text, the tool's result
        assert shown + "\n" in blocks


def test_markdown_headings_read_as_the_entries_they_head() -> None:
    """Every payload in every position: the headings are the title and one per entry, each
    reading as its role (a tool result's with the call's name and id, as typed)."""
    from analyzer.conversations import conversations
    from analyzer.export.transcript import transcripts

    for text in PAYLOADS:
        (transcript,) = transcripts(conversations(hostile_exchanges(text)))
        markdown = export.conversation_markdown(transcript)
        assert inert_problems(markdown) == [], text
        seen = " ".join(text.replace("\x00", "\ufffd").split())  # one line, as CommonMark reads it
        assert headings(markdown) == [
            ("h1", " ".join(transcript.title.replace("\x00", "\ufffd").split())), ("h3", "System prompt"), ("h3", "User"), ("h3", "Assistant (as sent back)"),
            ("h3", f"Tool result: {seen} ({seen})"), ("h3", "Assistant"), ("h3", "Error"),
        ], text  # fmt: skip


def test_show_markdown_renders_no_html_picture_or_unsafe_link() -> None:
    for text in PAYLOADS:
        for exchange in hostile_exchanges(text):
            for collapsible in (True, False):
                markdown = export.markdown_text(exchange, collapsible=collapsible)
                assert inert_problems(markdown) == [], (text, collapsible)
