"""Transcripts as self-contained HTML pages: one per conversation and an `index.html`.

The same content as the Markdown export, in the same order: title and facts, then each
entry under its role heading; assistant text rendered as Markdown, everything else shown
as escaped preformatted text, reasoning folded in `<details>`, tool calls as pretty JSON,
and under each reply its footer and a sparkline of characters generated over time. A
search box filters and highlights entries (or, in the index, conversations).

Every captured string is untrusted. Text is redacted, then escaped; Markdown goes through
markdown-it with raw HTML off and links limited to http(s), mailto and relative URLs; and
a Content-Security-Policy lets the page run only its own script (by hash) and load
nothing, so even an escaping slip could neither run code nor send a request. The pages
use no external scripts, fonts or images, open from disk, and the same transcripts give
the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt

from analyzer.export.safemd import safe_link
from analyzer.export.transcript import HEADINGS, Entry, Transcript, clipped, pretty_json, tool_title
from analyzer.files import private_dir, write_one
from analyzer.metrics import format_ms
from analyzer.protocols.server_tools import ServerTool
from analyzer.redact import redact_text

SPARK_WIDTH, SPARK_HEIGHT = 120, 22

_STYLE = """
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --text: #1d2127; --muted: #5f6873; --line: #dde1e6;
  --user: #eaf2ff; --user-edge: #3a78d8; --assistant-edge: #2f9e6e; --system: #f0f1f3;
  --tool: #f7f5ef; --tool-edge: #b08a2e; --code: #f1f3f5; --error: #fdeeee; --error-edge: #cf3b3b;
  --note: #fff7e0; --note-edge: #e0b43c; --accent: #2f9e6e; --link: #1f63c6; --mark: #ffe27a;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #15171b; --card: #1e2126; --text: #e3e6ea; --muted: #9aa3ad; --line: #343a42;
    --user: #1c2a40; --user-edge: #5b95ec; --assistant-edge: #46b988; --system: #23262b;
    --tool: #2a2720; --tool-edge: #c9a24a; --code: #272b31; --error: #3a1f21; --error-edge: #ef6a6a;
    --note: #332c18; --note-edge: #c9a24a; --accent: #46b988; --link: #7fb0ff; --mark: #806a12;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body {
  margin: 0; background: var(--bg); color: var(--text); line-height: 1.55; font-size: 16px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
}
.column { max-width: 52rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
.column.wide { max-width: 66rem; }
a { color: var(--link); }
pre, code { font-family: ui-monospace, "SF Mono", "Cascadia Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 0.875em; }
header h1 { font-size: 1.5rem; line-height: 1.3; margin: 0.4rem 0 0.75rem; overflow-wrap: anywhere; }
nav { font-size: 0.875rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0 0 1rem; font-size: 0.875rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.search { display: flex; align-items: center; gap: 0.75rem; margin: 1rem 0 1.5rem; }
.search input {
  flex: 1; font: inherit; font-size: 0.95rem; padding: 0.45rem 0.7rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--card); color: var(--text);
}
.search output { color: var(--muted); font-size: 0.85rem; white-space: nowrap; }
.entry {
  background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--line);
  border-radius: 8px; padding: 0.6rem 1rem 0.7rem; margin: 0 0 0.9rem;
}
.entry h2 {
  font-size: 0.75rem; letter-spacing: 0.06em; text-transform: uppercase; color: var(--muted);
  margin: 0 0 0.35rem; font-weight: 650;
}
.entry h2 .label { text-transform: none; letter-spacing: 0; font-weight: 500; }
.entry.user { background: var(--user); border-left-color: var(--user-edge); margin-left: 2.5rem; }
.entry.assistant { border-left-color: var(--assistant-edge); }
.entry.assistant.sent-back { border-left-style: dashed; }
.entry.system { background: var(--system); font-size: 0.9rem; }
.entry.tool { background: var(--tool); border-left-color: var(--tool-edge); }
.entry.error { background: var(--error); border-color: var(--error-edge); border-left-color: var(--error-edge); }
.entry.error h2 { color: var(--error-edge); }
.entry.note {
  background: var(--note); border-color: var(--note-edge); border-left-color: var(--note-edge);
  padding: 0.3rem 0.8rem; font-size: 0.85rem; font-style: italic; margin-left: 1rem; margin-right: 1rem;
}
.entry.note p { margin: 0; }
.plain { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: inherit; }
.markdown > :first-child { margin-top: 0; }
.markdown > :last-child { margin-bottom: 0; }
.markdown { overflow-wrap: anywhere; }
.markdown pre, pre.json { background: var(--code); padding: 0.6rem 0.8rem; border-radius: 6px; overflow-x: auto; }
pre.json { margin: 0.3rem 0 0.5rem; white-space: pre-wrap; overflow-wrap: anywhere; }
.entry > :last-child, .call:last-child > pre { margin-bottom: 0; }
.markdown :not(pre) > code { background: var(--code); padding: 0.1em 0.3em; border-radius: 4px; }
.markdown table { border-collapse: collapse; }
.markdown th, .markdown td { border: 1px solid var(--line); padding: 0.25rem 0.6rem; }
.markdown blockquote { margin: 0.5rem 0; padding-left: 0.8rem; border-left: 3px solid var(--line); color: var(--muted); }
details.reasoning { margin: 0 0 0.6rem; border: 1px solid var(--line); border-radius: 6px; padding: 0.3rem 0.7rem; font-size: 0.9rem; color: var(--muted); }
details.reasoning summary { cursor: pointer; font-weight: 600; }
details.reasoning[open] summary { margin-bottom: 0.4rem; }
.call { margin-top: 0.6rem; }
.call-head { font-size: 0.85rem; }
.call.server { margin: 0.6rem 0; padding-left: 0.7rem; border-left: 3px solid var(--line); }
.call.server pre.plain { background: var(--code); padding: 0.4rem 0.7rem; border-radius: 6px; margin: 0.2rem 0 0.4rem;
  font: 0.85rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.sources { margin: 0.2rem 0; padding-left: 1.2rem; font-size: 0.85rem; }
.footer { display: flex; align-items: center; flex-wrap: wrap; gap: 0.2rem 0.8rem; margin-top: 0.6rem; color: var(--muted); font-size: 0.78rem; }
.footer span { flex: 1 1 16rem; min-width: 0; overflow-wrap: anywhere; }
.spark { flex: none; color: var(--accent); }
.spark polyline { fill: none; stroke: currentColor; stroke-width: 1.5; stroke-linejoin: round; }
.spark line { stroke: var(--line); stroke-width: 1; }
mark.hit { background: var(--mark); color: inherit; border-radius: 2px; }
table.conversations { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; font-size: 0.9rem; }
table.conversations th, table.conversations td { text-align: left; padding: 0.45rem 0.7rem; border-bottom: 1px solid var(--line); vertical-align: top; }
table.conversations th { color: var(--muted); font-weight: 600; font-size: 0.78rem; text-transform: uppercase; letter-spacing: 0.05em; }
table.conversations td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.conversations .id { color: var(--muted); font-size: 0.8rem; }
table.conversations td.when { white-space: nowrap; }
table.conversations th:first-child { width: 45%; }
"""

# One script for both pages: filter the [data-item] elements by every word in the search
# box, highlight the words, and open folded reasoning that holds a match.
_SCRIPT = """
(() => {
  const box = document.getElementById("search");
  const count = document.getElementById("count");
  const items = Array.from(document.querySelectorAll("[data-item]"));
  const noun = box.dataset.noun;
  const unmark = (root) => {
    for (const mark of root.querySelectorAll("mark.hit")) {
      const parent = mark.parentNode;
      parent.replaceChild(document.createTextNode(mark.textContent), mark);
      parent.normalize();
    }
    for (const details of root.querySelectorAll("details[data-opened]")) {
      details.open = false;
      delete details.dataset.opened;
    }
  };
  const highlight = (root, terms) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const nodes = [];
    while (walker.nextNode()) nodes.push(walker.currentNode);
    for (const node of nodes) {
      if (node.parentNode.closest("svg")) continue;
      const text = node.nodeValue;
      const lower = text.toLowerCase();
      const spans = [];
      for (const term of terms) {
        for (let at = lower.indexOf(term); at !== -1; at = lower.indexOf(term, at + term.length)) {
          spans.push([at, at + term.length]);
        }
      }
      if (!spans.length) continue;
      spans.sort((a, b) => a[0] - b[0]);
      const pieces = document.createDocumentFragment();
      let done = 0;
      for (const [start, end] of spans) {
        if (end <= done) continue;
        const from = Math.max(start, done);
        pieces.append(text.slice(done, from));
        const mark = document.createElement("mark");
        mark.className = "hit";
        mark.textContent = text.slice(from, end);
        pieces.append(mark);
        done = end;
      }
      pieces.append(text.slice(done));
      node.parentNode.replaceChild(pieces, node);
    }
    for (const details of root.querySelectorAll("details:not([open])")) {
      if (details.querySelector("mark.hit")) {
        details.open = true;
        details.dataset.opened = "";
      }
    }
  };
  const apply = () => {
    const terms = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    let shown = 0;
    for (const item of items) {
      unmark(item);
      const text = item.textContent.toLowerCase();
      const hit = terms.every((term) => text.includes(term));
      item.hidden = !hit;
      if (hit) {
        shown += 1;
        if (terms.length) highlight(item, terms);
      }
    }
    count.textContent = terms.length ? `${shown} of ${items.length} ${noun}` : `${items.length} ${noun}`;
  };
  box.addEventListener("input", apply);
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== box) {
      event.preventDefault();
      box.focus();
    }
  });
  apply();
})();
"""


def _hash(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src '{_hash(_SCRIPT)}'; style-src '{_hash(_STYLE)}'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("js-default", {"html": False, "linkify": False, "typographer": False, "breaks": True})
    md.validateLink = safe_link  # the Markdown export's rule: http(s), mailto or relative

    def link_open(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
        tokens[idx].attrSet("rel", "noopener noreferrer nofollow")
        return self.renderToken(tokens, idx, options, env)

    def image(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
        # Pictures would be requests; show the picture's address as a link instead.
        token = tokens[idx]
        alt = self.renderInlineAsText(token.children or [], options, env) or "image"
        src = html.escape(str(token.attrGet("src") or ""))
        return f'<a href="{src}" rel="noopener noreferrer nofollow">[image: {html.escape(alt)}]</a>'

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("image", image)
    return md


_MD = _markdown()


def _escape(text: str) -> str:
    return html.escape(redact_text(text))


def _rendered(text: str) -> str:
    return f'<div class="markdown">{_MD.render(redact_text(text))}</div>'


def _plain(text: str) -> str:
    return f'<pre class="plain">{_escape(text)}</pre>'


def sparkline(curve: Sequence[tuple[float, int]]) -> str:
    """An inline SVG of characters generated so far against time since the request was sent,
    flat until the first character; empty when there is no curve."""
    if not curve:
        return ""
    first, last = curve[0][0], curve[-1][0]
    chars = curve[-1][1]
    span = max(last, 1e-9)
    top = max(chars, 1)
    inner = SPARK_HEIGHT - 2

    def point(t_ms: float, count: int) -> str:
        return f"{t_ms / span * SPARK_WIDTH:.1f},{1 + inner - count / top * inner:.1f}"

    points = " ".join([point(0, 0), point(first, 0), *(point(t, n) for t, n in curve)])
    title = f"TTFT {format_ms(first)}, streamed for {format_ms(last - first)}, {chars:,} characters"
    return (
        f'<svg class="spark" width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" '
        f'viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" role="img" aria-label="{html.escape(title)}">'
        f"<title>{html.escape(title)}</title>"
        f'<line x1="0" y1="{SPARK_HEIGHT - 0.5}" x2="{SPARK_WIDTH}" y2="{SPARK_HEIGHT - 0.5}"/>'
        f'<polyline points="{points}"/></svg>'
    )


def _entry(entry: Entry, number: int) -> str:
    classes = [entry.role if entry.role in (*HEADINGS, "tool", "note") else "other"]
    if entry.role == "assistant" and entry.origin == "request":
        classes.append("sent-back")
    opening = f'<article class="entry {" ".join(classes)}" id="e{number}" data-item data-role="{_escape(entry.role)}">'
    if entry.role == "note":
        return f"{opening}<p>{_escape(entry.text)}</p></article>"
    if entry.role == "tool":
        name = f"<code>{_escape(entry.call_name or '?')}</code>"
        heading = (
            f'Tool result <span class="label">{name}{f" ({_escape(entry.call_id)})" if entry.call_id else ""}</span>'
        )
    else:
        heading = _escape(HEADINGS.get(entry.role, entry.role.title()))
        if entry.label:
            heading += f' <span class="label">({_escape(entry.label)})</span>'
    parts = [opening, f"<h2>{heading}</h2>"]
    if entry.reasoning:
        parts.append(f'<details class="reasoning"><summary>Reasoning</summary>{_rendered(entry.reasoning)}</details>')
    if entry.role == "error":
        parts.append(f'<pre class="json">{_escape(entry.text)}</pre>')
    elif entry.role == "tool":
        parts.append(f'<pre class="json">{_escape(pretty_json(entry.text))}</pre>')
    elif entry.segments:  # the reply with the tools its provider ran, in their place
        parts += [
            _rendered(segment) if isinstance(segment, str) else _server_tool(segment) for segment in entry.segments
        ]
    elif entry.text and entry.role == "assistant":
        parts.append(_rendered(entry.text))
    elif entry.text:
        parts.append(_plain(entry.text))
    for call in entry.calls:
        ident = f" ({_escape(call.id)})" if call.id else ""
        parts.append(
            f'<div class="call"><div class="call-head">Tool call <code>{_escape(call.name or "?")}</code>{ident}</div>'
            f'<pre class="json">{_escape(pretty_json(call.arguments))}</pre></div>'
        )
    if entry.footer or entry.curve:
        facts = " · ".join(_escape(fact) for fact in entry.footer)
        parts.append(f'<div class="footer">{sparkline(entry.curve)}<span>{facts}</span></div>')
    parts.append("</article>")
    return "".join(parts)


def _server_tool(tool: ServerTool) -> str:
    """A tool the provider ran: its name, what was asked, what came back, the sources."""
    parts = [f'<div class="call server"><div class="call-head">{_escape(tool_title(tool))}</div>']
    if tool.request:
        parts.append(f'<pre class="plain">{_escape(tool.request)}</pre>')
    if tool.result:
        parts.append(f'<div class="call-head">Result</div><pre class="plain">{_escape(clipped(tool.result))}</pre>')
    if tool.sources:
        items = [
            f'<li><a href="{_escape(url)}" rel="noreferrer nofollow">{_escape(title or url)}</a></li>'
            if safe_link(url)
            else f"<li>{_escape(title)} <code>{_escape(url)}</code></li>"
            for title, url in tool.sources
        ]
        parts.append(f'<ul class="sources">{"".join(items)}</ul>')
    parts.append("</div>")
    return "".join(parts)


def _page(title: str, body: str, column: str = "column") -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="chatcap">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f'<body>\n<div class="{column}">\n{body}\n</div>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n'
    )


def _search(placeholder: str, noun: str) -> str:
    return (
        f'<div class="search"><input type="search" id="search" placeholder="{placeholder}" '
        f'aria-label="{placeholder}" data-noun="{noun}" autocomplete="off">'
        '<output id="count" for="search" aria-live="polite"></output></div>'
    )


def conversation_html(transcript: Transcript) -> str:
    """One conversation as a self-contained page (see the module docstring). Redacted."""
    facts = "".join(f"<dt>{_escape(name)}</dt><dd>{_escape(value)}</dd>" for name, value in transcript.facts)
    entries = "\n".join(_entry(entry, n) for n, entry in enumerate(transcript.entries, 1))
    body = (
        '<header><nav><a href="index.html">← All conversations</a></nav>'
        f'<h1>{_escape(transcript.title)}</h1><dl class="facts">{facts}</dl>'
        f"{_search('Search this conversation (press /)', 'entries')}</header>\n"
        f'<main id="entries">\n{entries}\n</main>'
    )
    return _page(f"{_escape(transcript.title)} · chatcap", body)


def _messages(transcript: Transcript) -> int:
    return sum(entry.role in ("system", "user", "assistant", "tool") for entry in transcript.entries)


def index_html(transcripts: Iterable[Transcript]) -> str:
    """A table of the conversations, each title linking to its page, with a search box."""
    return _index_page([_index_row(transcript) for transcript in transcripts])


def _index_row(transcript: Transcript) -> str:
    facts = dict(transcript.facts)
    href = html.escape(quote(f"{transcript.stem}.html"))
    return (
        "<tr data-item>"
        f'<td><a href="{href}">{_escape(transcript.title)}</a> <span class="id">{_escape(transcript.id)}</span></td>'
        f'<td class="when">{_escape(facts.get("started", "—"))}</td>'
        f"<td>{_escape(facts.get('models', '—'))}</td>"
        f'<td class="number">{len(transcript.exchanges)}</td>'
        f'<td class="number">{_messages(transcript)}</td></tr>'
    )


def _index_page(rows: list[str]) -> str:
    body = (
        f"<header><h1>Conversations</h1>{_search('Search titles, models, dates (press /)', 'conversations')}</header>\n"
        '<main>\n<table class="conversations">\n<thead><tr><th>Conversation</th><th>Started</th><th>Models</th>'
        '<th class="number">Exchanges</th><th class="number">Messages</th></tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</main>"
    )
    return _page("Conversations · chatcap", body, "column wide")


def write(transcripts: Iterable[tuple[int, Transcript]], out_dir: str | Path) -> list[Path]:
    """Write `<stem>.html` per conversation, each as it comes (none is kept but its row of
    the index), and then `index.html` into `out_dir`; returns the paths. The transcripts come
    with their places (in any order): the index and the paths returned follow them."""
    out = private_dir(out_dir)
    written: list[tuple[int, Path]] = []
    rows = []
    for place, transcript in transcripts:
        rows.append((place, _index_row(transcript)))
        done: list[Path] = []
        write_one(out / f"{transcript.stem}.html", conversation_html(transcript), done)
        written += [(place, path) for path in done]
    paths = [path for _, path in sorted(written)]  # places are unique: nothing else is compared
    write_one(out / "index.html", _index_page([row for _, row in sorted(rows)]), paths)
    return paths
