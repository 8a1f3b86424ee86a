"""Captured text in Markdown that renders inert: what the Markdown transcripts are made of.

A Markdown file is read by renderers that pass raw HTML through (CommonMark's default) and
follow any link, so captured text is placed one of three ways:

- `literal(text)`: a fenced code block whose backtick run is longer than any inside it —
  user, system and tool text, tool arguments and results, errors. Shown exactly.
- `inline(text)` / `code(text)`: one line inside a heading, a list item or a footer, with
  Markdown's and HTML's own characters escaped, or as an inline code span.
- `model(text)`: the model's own Markdown, kept as Markdown, except that `<` that could
  start HTML is written `&lt;` outside code, a picture becomes a link to it, a link whose
  scheme is not http(s) or mailto becomes text, headings move three levels down (#### and
  below, so a reply cannot forge the transcript's `###` role headings), and a fence the
  text leaves open is closed. The result is parsed again (markdown-it, CommonMark with raw
  HTML on, with and without GFM tables, every link accepted); if anything of that kind is
  still there, the text is shown literally instead.

`unsafe(document, allowed_html)` runs the same check over a whole file.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_SAFE_SCHEMES = frozenset({"http", "https", "mailto"})


def safe_link(url: str) -> bool:
    """Links may be http(s), mailto or relative (the HTML export's rule too). markdown-it has
    decoded entities and percent-encoded control characters and spaces by now; a colon
    before the first `/`, `?` or `#` (as in `java%09script:`) is refused unless it ends an
    allowed scheme."""
    url = url.strip().lower()
    scheme = _SCHEME.match(url)
    if scheme is not None:
        return scheme.group(1) in _SAFE_SCHEMES
    return ":" not in re.split(r"[/?#]", url, maxsplit=1)[0]


def literal(text: str, info: str = "") -> str:
    """`text` in a fenced code block that nothing inside can close (a lone CR written as
    the line end CommonMark reads it as, so one at the end is not lost)."""
    text = re.sub(r"\r\n?", "\n", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def code(text: str | None) -> str:
    """`text` as an inline code span on one line (`?` when there is none)."""
    text = " ".join((text or "?").split()) or "?"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]#|>])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def inline(text: str) -> str:
    """Text for a heading, a list item or a footer: one line, Markdown's own characters
    backslash-escaped (`&` where it would start an entity) and `<` written `&lt;`, so it is
    never HTML, a link or a picture, and reads as it was."""
    escaped = _INLINE_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    return _ENTITY.sub(r"\\&", escaped).replace("<", "&lt;")


# -- the model's own Markdown ----------------------------------------------------------------


def _parser(tables: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True})
    if tables:
        md.enable("table")
    md.validateLink = lambda url: True  # see every link a lenient renderer would make
    return md


_PARSERS = (_parser(tables=False), _parser(tables=True))


def _parsers(text: str) -> tuple[MarkdownIt, ...]:
    """The readings of `text` that can differ: a GFM table needs a `|` in its header row, so
    a text without one reads the same with tables or without (held by a property test)."""
    return _PARSERS if "|" in text else _PARSERS[:1]


_END = "chatcap-end-of-text"
# Without one of these a text holds no HTML, link, picture, heading or fence.
_MARKUP = re.compile(r"[<\[#`~]|^[ \t>]*(?:=+|-+)[ \t]*$", re.MULTILINE)
# `<` that could open a tag, a comment, a declaration or an autolink.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_SAFE_AUTOLINK = re.compile(r"<https?://[^\x00-\x20<>`]*>", re.IGNORECASE)
_PICTURE = re.compile(r"(?<!\\)(?:\\\\)*(?P<mark>!\[)")
_BRACKET = re.compile(r"(?<!\\)(?:\\\\)*(?P<mark>\[)")


def model(text: str) -> str:
    """The model's own Markdown, made inert as the module docstring says; shown literally
    (a ```markdown fence) when it cannot be."""
    text = re.sub(r"\r\n?", "\n", text)  # CommonMark's other line ends, as markdown-it reads them
    if not _MARKUP.search(text):
        return text  # no HTML, link, picture, heading or fence can start without these
    rewritten = _rewrite(text, first=True)
    for _ in range(4):
        verdict = _verdict(rewritten)
        if verdict is None:
            return rewritten
        if verdict.startswith(("`", "~")):  # a fence left open at the end: close it
            rewritten += "\n" + verdict
            continue
        # What the escaping uncovered (text an HTML block held) is looked at again.
        again = _rewrite(rewritten, first=False)
        if again == rewritten:
            break
        rewritten = again
    return literal(text, "markdown")


@dataclass(slots=True)
class _Plan:
    """What to change in which source lines."""

    verbatim: list[set[int]] = field(default_factory=list)  # per parser: lines in fenced or indented code
    # Per line, each reading of it: the column ranges inside code spans.
    readings: dict[int, list[list[tuple[int, int]]]] = field(default_factory=dict)
    links: set[int] = field(default_factory=set)  # lines whose `[` are all escaped
    definitions: set[int] = field(default_factory=set)  # unsafe link reference definitions
    atx: dict[int, int] = field(default_factory=dict)  # line -> heading level
    setext: dict[int, tuple[int, int, bool]] = field(default_factory=dict)  # underline -> (first, level, top)


def _rewrite(text: str, first: bool) -> str:
    """One pass over the lines as the text parses; `first`: every heading moves three levels
    down, later passes move only those still above h4."""
    lines = text.split("\n")
    plan = _Plan()
    for parser in _parsers(text):
        env: dict[str, Any] = {}
        _plan(parser.parse(text, env), lines, plan)
        for reference in env.get("references", {}).values():
            if not safe_link(reference.get("href", "")) and reference.get("map"):
                plan.definitions.add(reference["map"][0])
    verbatim = set.intersection(*plan.verbatim)  # code to every reading
    out: list[str | None] = []
    for number, line in enumerate(lines):
        if number in verbatim:
            out.append(line)
            continue
        readings = plan.readings.get(number, [])
        line = _escape_html(line, readings)
        line = _replace(line, _PICTURE, "[image: ", readings)
        if number in plan.links:
            line = _replace(line, _BRACKET, "\\[", readings)
        if number in plan.definitions and "[" in line:
            at = line.index("[")
            line = line[:at] + "\\" + line[at:]
        if number in plan.atx and (first or plan.atx[number] < 4):
            at = line.index("#")
            level = plan.atx[number]
            line = line[:at] + "#" * min(6, level + 3) + line[at + level :]
        out.append(line)
    for underline, (first, level, top) in plan.setext.items():
        if underline in verbatim:
            continue
        if top and first == underline - 1:
            out[first] = "#" * (level + 3) + " " + (out[first] or "").strip()
            out[underline] = None
        else:  # in a list or a quote, or over several lines: the underline becomes text
            line = out[underline] or ""
            at = len(line) - len(line.lstrip(" >"))
            out[underline] = line[:at] + "\\" + line[at:]
    return "\n".join(line for line in out if line is not None)


def _plan(tokens: Sequence[Token], lines: list[str], plan: _Plan) -> None:
    verbatim: set[int] = set()
    in_table = False
    for token in tokens:
        if token.type in ("fence", "code_block") and token.map:
            verbatim.update(range(*token.map))
        elif token.type == "table_open" and token.map:
            in_table = True
            _read(plan, token.map[0], _code_spans(lines[token.map[0] : token.map[1]]))
        elif token.type == "table_close":
            in_table = False
        elif token.type == "heading_open" and token.map:
            level = int(token.tag[1])
            if token.markup.startswith("#"):
                plan.atx[token.map[0]] = level
            else:
                plan.setext[token.map[1] - 1] = (token.map[0], level, token.level == 0)
        elif token.type == "inline" and token.map:
            start, end = token.map
            _read(plan, start, _code_spans(lines[start:end]))
            if in_table:  # GFM cuts a row into cells before it looks for code
                _read(plan, start, [_cell_spans(lines[start])])
            for child in _walk(token.children or []):
                url = child.attrGet("src") if child.type == "image" else child.attrGet("href")
                if child.type in ("image", "link_open") and not safe_link(str(url or "")):
                    plan.links.update(range(start, end))
    plan.verbatim.append(verbatim)


def _read(plan: _Plan, first: int, per_line: list[list[tuple[int, int]]]) -> None:
    for number, spans in enumerate(per_line, first):
        plan.readings.setdefault(number, []).append(spans)


def _code_spans(lines: list[str]) -> list[list[tuple[int, int]]]:
    """Per line: the (from, to) column ranges inside code spans, as CommonMark pairs
    backtick runs over the whole block (a backslash-escaped backtick opens none)."""
    text = "\n".join(lines)
    runs = [(m.start(), len(m.group())) for m in re.finditer(r"`+", text)]
    by_length: dict[int, list[int]] = {}
    for n, (_, length) in enumerate(runs):
        by_length.setdefault(length, []).append(n)
    inside: list[tuple[int, int]] = []
    n = 0
    while n < len(runs):
        at, length = runs[n]
        if _backslashes_before(text, at) % 2:  # `\`` is a backtick; the rest of the run may open
            at, length = at + 1, length - 1
        same = by_length.get(length, [])
        later = bisect.bisect_right(same, n)
        if not length or later == len(same):
            n += 1
            continue
        close = same[later]
        inside.append((at, runs[close][0] + length))
        n = close + 1
    per_line: list[list[tuple[int, int]]] = []
    offset, first = 0, 0
    for line in lines:
        end = offset + len(line)
        while first < len(inside) and inside[first][1] <= offset:
            first += 1
        here = []
        for a, b in inside[first:]:
            if a >= end:
                break
            here.append((max(a - offset, 0), min(b - offset, len(line))))
        per_line.append(here)
        offset = end + 1
    return per_line


def _backslashes_before(text: str, at: int) -> int:
    count = 0
    while at - count > 0 and text[at - count - 1] == "\\":
        count += 1
    return count


def _cell_spans(line: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    at = 0
    for cell in re.split(r"(?<!\\)\|", line):
        spans += [(at + a, at + b) for a, b in _code_spans([cell])[0]]
        at += len(cell) + 1
    return spans


_FAR = 1 << 62


def _in_code(column: int, readings: list[list[tuple[int, int]]]) -> bool:
    """In code only when every reading of the line puts it in a code span."""
    if not readings:
        return False
    for spans in readings:
        n = bisect.bisect_right(spans, (column, _FAR)) - 1
        if n < 0 or not spans[n][0] <= column < spans[n][1]:
            return False
    return True


def _escape_html(line: str, readings: list[list[tuple[int, int]]]) -> str:
    """`<` that could open HTML or an autolink written `&lt;`, outside code; an http(s)
    autolink kept."""
    keep = {m.start() for m in _SAFE_AUTOLINK.finditer(line)}
    out, last = [], 0
    for match in _HTML_START.finditer(line):
        at = match.start()
        if at in keep or _in_code(at, readings):
            continue
        out += [line[last:at], "&lt;"]
        last = at + 1
    return "".join(out) + line[last:]


def _replace(line: str, pattern: re.Pattern[str], by: str, readings: list[list[tuple[int, int]]]) -> str:
    """Each match's last part (`![` or `[`, after any escaped backslashes) replaced by `by`,
    outside code: `![alt](src)` becomes `[image: alt](src)`, a link to the picture, and on a
    line with an unsafe link or picture every `[` becomes `\\[`, so they are text."""
    out, last = [], 0
    for match in pattern.finditer(line):
        at = match.start("mark")
        if _in_code(at, readings):
            continue
        out += [line[last:at], by]
        last = match.end()
    return "".join(out) + line[last:]


def _verdict(text: str) -> str | None:
    """None when `text` is inert and leaves what follows it alone; the markup of a fence it
    leaves open at its end; else what is wrong."""
    for parser in _parsers(text):
        tokens = parser.parse(text + "\n\n" + _END + "\n")
        problems = _problems(tokens, ())
        if problems:
            return problems[0]
        ends_free = (
            len(tokens) >= 3 and tokens[-3].type == "paragraph_open" and tokens[-3].level == 0
            and tokens[-2].content == _END
        )  # fmt: skip
        if not ends_free:
            last = [t for t in tokens if t.level == 0 and t.type != "paragraph_close"]
            return last[-1].markup if last and last[-1].type == "fence" else "swallows what follows"
    return None


def _walk(tokens: Iterable[Token]) -> Iterable[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _problems(tokens: Sequence[Token], allowed_html: Iterable[str], headings: int = 0) -> list[str]:
    """What in a parse would render as HTML other than `allowed_html`, a picture or an
    unsafe link, and a count of headings above h4 other than `headings`."""
    allowed = set(allowed_html)
    found = []
    above = 0
    for token in _walk(tokens):
        if token.type in ("html_block", "html_inline") and token.content.strip() not in allowed:
            found.append(f"HTML {token.content.strip()[:40]!r}")
        elif token.type == "image":
            found.append(f"picture {token.attrGet('src')!r}")
        elif token.type == "link_open" and not safe_link(str(token.attrGet("href") or "")):
            found.append(f"link {token.attrGet('href')!r}")
        elif token.type == "heading_open" and int(token.tag[1]) < 4:
            above += 1
    if above != headings:
        found.append(f"{above} headings above h4, not {headings}")
    return found


def unsafe(document: str, allowed_html: Iterable[str], headings: int) -> list[str]:
    """What in a whole transcript would run, load or link unsafely, or a count of headings
    above h4 other than `headings` (the title's and the role headings), with or without GFM
    tables: empty when it is inert."""
    return [
        problem
        for parser in _parsers(document)
        for problem in _problems(parser.parse(document), allowed_html, headings)
    ]
