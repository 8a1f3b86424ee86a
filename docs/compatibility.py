"""Write docs/compatibility.md from a run of every layer over real recordings.

    python docs/compatibility.py [CORPUS_DIR]     # make compatibility (default: tests/data/real)

Two tables. The first runs over the corpus of streams recorded from real providers: per
provider × protocol, the fold (reconstruction) aspect by aspect, judged as
tests/test_real_corpus.py and tests/test_real_corpus_protocols.py judge it (agreement with the
official SDK's accumulation where the SDK is right, the stream's own content where it is not),
then each layer built on the fold: usage, show, transcript, JSONL. The second runs over the
external recordings in tests/data/external (other projects' test suites), judged against their
expected.json as tests/test_external_recordings.py judges them. Nothing here is typed by hand.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter, ValidationError

import analyzer
from analyzer import export
from analyzer.anomalies import usage_mismatch
from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols.events import error_text
from analyzer.protocols.server_tools import ServerTool, segments

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from bundled import REAL_CORPUS  # noqa: E402
from test_external_recordings import (  # noqa: E402
    EXPECTED,
    check_reconstruction,
    test_usage_is_kept_as_the_provider_stated_it,
    wrap,
)
from test_real_corpus import (  # noqa: E402
    SDK_DROPS_REASONING,
    SDK_DROPS_USAGE,
    SDK_WRONG_TOOL_CALLS,
    groq_usage,
    oracle,
    reconstruct,
    sdk_reasoning,
)
from test_real_corpus_protocols import PATHS, gemini_expected, sdk_final, without_nulls  # noqa: E402
from test_real_corpus_protocols import reconstruct as reconstruct_any  # noqa: E402
from test_usage import TRUE_MISMATCHES  # noqa: E402

TARGET = ROOT / "docs" / "compatibility.md"
ASPECTS = ("text", "reasoning", "tool calls", "usage", "errors", "timing")
LAYERS = ("usage checks", "show", "transcript", "JSONL")
EXTERNAL_COLUMNS = ("fold", *LAYERS, "server tools")

Verdicts = dict[str, bool | None]  # per column: True (right), False (wrong), None (not exercised)


# -- the fold, on the corpus: aspect by aspect, as the corpus tests judge it ---------------


def chat_results(path: Path) -> Verdicts:
    """Per aspect: True (right), False (wrong), None (the stream does not exercise it)."""
    rec = reconstruct(path)
    expected = oracle(path)
    choice = rec.choices[0] if rec.choices else None
    mine = rec.to_openai()["choices"][0]["message"] if rec.choices else {}
    result: Verdicts = dict.fromkeys(ASPECTS)
    result["errors"] = (rec.error is not None) if b'"error"' in path.read_bytes() else None
    # A bare recorded body dates itself only by the chunks' `created` (all 0 for some providers).
    result["timing"] = (rec.timing is not None and rec.timing.source == "created") if rec.created_range else None
    if expected is None:  # no SDK answer: the corpus tests state these streams' results one by one
        result["text"] = bool(choice and (choice.content or choice.tool_calls or choice.reasoning))
        return result
    theirs = expected["choices"][0]["message"] if expected.get("choices") else {}
    if theirs.get("content") or mine.get("content"):
        result["text"] = (mine.get("content") or "") == (theirs.get("content") or "")
    wanted_reasoning = SDK_DROPS_REASONING.get(path.stem)
    if wanted_reasoning or sdk_reasoning(theirs) or mine.get("reasoning_content"):
        got = mine.get("reasoning_content") or ""
        result["reasoning"] = got.startswith(wanted_reasoning) if wanted_reasoning else got == sdk_reasoning(theirs)
    calls = [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in mine.get("tool_calls", [])]
    if calls or theirs.get("tool_calls"):
        want = SDK_WRONG_TOOL_CALLS.get(path.stem) or [
            (c.get("id"), c["function"]["name"], c["function"].get("arguments") or "") for c in theirs["tool_calls"]
        ]
        result["tool calls"] = calls == want
    if expected.get("usage") or rec.usage:
        # Where the SDK has none, Groq's x_groq.usage (read from the stream) is the answer.
        want = groq_usage(path) if path.stem.startswith("groq__") and not expected.get("usage") else expected["usage"]
        result["usage"] = path.stem in SDK_DROPS_USAGE or (rec.usage.raw if rec.usage else None) == want
    return result


def _native_view(native: dict[str, Any], protocol: str) -> dict[str, Any]:
    """Text, reasoning, tool calls and usage of a protocol's own final object."""
    native = without_nulls(native)
    if protocol == "anthropic_messages":
        blocks = native.get("content", [])
        return {
            "text": [b.get("text") for b in blocks if b.get("type") == "text"],
            "reasoning": [b.get("thinking") or b.get("data") for b in blocks if "thinking" in b.get("type", "")],
            "tool calls": [(b.get("id"), b.get("name"), b.get("input")) for b in blocks if "tool_use" in b["type"]],
            "usage": native.get("usage"),
        }
    items = native.get("output", [])
    return {
        "text": [p for i in items if i.get("type") == "message" for p in i.get("content", [])],
        "reasoning": [i.get("summary") or i.get("content") for i in items if i.get("type") == "reasoning"],
        "tool calls": [i for i in items if "call" in i.get("type", "")],
        "usage": native.get("usage"),
    }


def protocol_results(path: Path) -> Verdicts:
    """Anthropic and Responses against the SDK's final object, Gemini against its parts."""
    protocol = path.stem.split("__")[1]
    rec = reconstruct_any(path)
    result: Verdicts = dict.fromkeys(ASPECTS)
    result["errors"] = (rec.error is not None) if b'"error":{' in path.read_bytes() else None
    if protocol == "gemini":
        want = gemini_expected(path)
        choice = rec.choices[0]
        result["text"] = (choice.content or "") == want["text"] if want["text"] else None
        result["reasoning"] = (choice.reasoning or "") == want["thought"] if want["thought"] else None
        if want["calls"]:
            got = [(c.name, c.parsed_arguments) for c in choice.tool_calls]
            result["tool calls"] = got == want["calls"]
        result["usage"] = rec.usage is not None and rec.usage.raw == want["usage"]
        return result
    ours, theirs = _native_view(rec.to_native(), protocol), _native_view(sdk_final(path) or {}, protocol)
    for aspect in ("text", "reasoning", "tool calls", "usage"):
        if ours[aspect] or theirs[aspect]:
            result[aspect] = ours[aspect] == theirs[aspect]
    return result


# -- the layers, on any exchange -----------------------------------------------------------

MESSAGE = TypeAdapter(ChatCompletionMessageParam)
TOOL = TypeAdapter(ChatCompletionToolParam)
WORDS = re.compile(r"\w+")
# The transcript is compared by its first words: enough to find the text, few enough that a
# long answer's Markdown (a table, a list rewritten inert) does not decide the verdict.
FIRST_WORDS = 12
# Making text inert adds words between the text's own: `<` becomes `&lt;` (the word `lt`), a
# link `[a](<u>)` shows its URL's words. A few are allowed between two words of the text;
# anywhere in the file would let common words found elsewhere (the prompt) pass for it.
ADDED_WORDS = 4


def answers(rec: Reconstruction) -> list[str]:
    """Each choice's answer as a reader sees it: the content (after a `<think>` block split out
    of it, when that is the reasoning shown), in the pieces between the server tools it ran."""
    found = []
    for index, choice in enumerate(rec.choices):
        pieces = segments(rec, index)
        if any(isinstance(piece, ServerTool) for piece in pieces):
            found += [piece for piece in pieces if isinstance(piece, str)]
            continue
        answer = choice.answer if choice.think is not None and not choice.reasoning else choice.content
        found += [answer] if answer else []
    return found


def tool_requests(rec: Reconstruction) -> list[str]:
    """What the model asked of each server tool: the query, the URL, the code."""
    return [
        piece.request
        for index in range(len(rec.choices))
        for piece in segments(rec, index)
        if isinstance(piece, ServerTool) and piece.request
    ]


def shown_texts(rec: Reconstruction) -> list[str]:
    """What `show` and the transcript must hold: the answer, the server tools' requests, the error."""
    return [*answers(rec), *tool_requests(rec), *([error_text(rec.error)] if rec.error else [])]


def in_order(text: str, words: list[str]) -> bool:
    """Whether `text`'s first words appear in `words` in order, a few other words allowed between."""
    wanted = WORDS.findall(text)[:FIRST_WORDS]
    if not wanted:
        return True
    for start in (i for i, word in enumerate(words) if word == wanted[0]):
        at = start
        for word in wanted[1:]:
            ahead = words[at + 1 : at + 2 + ADDED_WORDS]
            if word not in ahead:
                break
            at += 1 + ahead.index(word)
        else:
            return True
    return False


def jsonl_valid(exchange: Exchange, rec: Reconstruction, out: Path) -> bool | None:
    """Whether the exported line's messages and tools are what the `openai` SDK's types accept;
    None when there is no reply to export."""
    lines = export.jsonl([exchange], out / "c.jsonl").read_text(encoding="utf-8").splitlines()
    if not lines:
        return False if rec.choices else None
    try:
        for line in map(json.loads, lines):
            for message in line["messages"]:
                _drained(MESSAGE.validate_python(message))
            for tool in line.get("tools", []):
                _drained(TOOL.validate_python(tool))
    except ValidationError:
        return False
    return True


def _drained(value: Any) -> None:
    """Read every part of a validated value: the SDK types declare lists as `Iterable`, which
    pydantic validates lazily, as they are read (a tool call's `id: null` passes until then)."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list | Iterator):
        return
    for item in value:
        _drained(item)


# Named tuples, not dataclasses: the tests load this file without registering it as a module,
# which dataclasses need.
class Layers(NamedTuple):
    """One exchange through every layer: the verdicts, and what `show` and the transcript wrote."""

    verdicts: Verdicts
    shown: str
    transcript: str


def layers(exchange: Exchange, out: Path, *, true_alarm: bool = False) -> Layers:
    """The verdicts of the usage, show, transcript and JSONL layers on one exchange (`true_alarm`:
    its usage really disagrees with its text, so the mismatch alarm must fire)."""
    rec = exchange.reconstruct()
    verdicts: Verdicts = dict.fromkeys(LAYERS)
    if rec.usage is not None and rec.usage.source == "reported":
        alarm = usage_mismatch(rec) is not None
        verdicts["usage checks"] = not rec.has("usage_identity") and alarm == true_alarm
    shown = export.plain_text(exchange)
    (path,) = export.markdown([exchange], out / "md")
    transcript = path.read_text(encoding="utf-8")
    words = WORDS.findall(transcript)
    path.unlink()
    texts = shown_texts(rec)
    if texts:
        verdicts["show"] = all(text in shown for text in texts)
        verdicts["transcript"] = all(in_order(text, words) for text in texts)
    verdicts["JSONL"] = jsonl_valid(exchange, rec, out)
    return Layers(verdicts=verdicts, shown=shown, transcript=transcript)


# -- the runs ------------------------------------------------------------------------------


class Results(NamedTuple):
    """Per row of each table (provider or source, protocol): each exchange's name and verdicts."""

    corpus: dict[tuple[str, str], list[tuple[str, Verdicts]]]
    external: dict[tuple[str, str], list[tuple[str, Verdicts]]]


def captured(path: Path) -> Exchange:
    """A corpus stream with its recorded request, as the proxy would have captured it (the id
    `analyzer.load` gives the bare file, which tests/test_usage.py names its true alarms by)."""
    protocol = path.stem.split("__")[1]
    request_file = path.with_suffix(".request.json")
    body = request_file.read_bytes() if request_file.exists() else None
    url = PATHS.get(protocol, "https://provider/v1/chat/completions")
    request = Request(method="POST", url=url, body=body)
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=path.read_bytes())
    return Exchange(id=f"{path.name}#1", source=str(path), format="sse-text", request=request, response=response)


def external_fold(exchange: Exchange, key: str, wrapped: Path) -> bool:
    """Whether the reconstruction (and usage as stated) is what expected.json says."""
    try:
        check_reconstruction(exchange, exchange.reconstruct(), EXPECTED[key], "dump")
        if EXPECTED[key]["status"] < 400:
            test_usage_is_kept_as_the_provider_stated_it(wrapped, key)
    except AssertionError:
        return False
    return True


def server_tools_shown(key: str, found: Layers) -> bool | None:
    """Whether each server tool expected.json names shows in `show` and in the transcript."""
    needles = [tool["needle"] for tool in EXPECTED[key].get("server_tools") or []]
    if not needles:
        return None
    return all(needle in found.shown and needle in found.transcript for needle in needles)


def results(corpus: Path) -> Results:
    """Every verdict of both tables."""
    found = Results(corpus=defaultdict(list), external=defaultdict(list))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for path in sorted(corpus.glob("*.sse")):
            provider, protocol = path.stem.split("__")[:2]
            fold = chat_results(path) if protocol == "openai_chat" else protocol_results(path)
            exchange = captured(path)
            run = layers(exchange, out, true_alarm=exchange.id in TRUE_MISMATCHES)
            found.corpus[provider, protocol].append((path.stem, {**fold, **run.verdicts}))
        wrapped = out / "external"
        wrap.write_all(wrapped)
        for key in sorted(EXPECTED):
            (exchange,) = analyzer.load(wrapped / "dump" / f"{key.replace('/', '__')}.json", progress=False)
            run = layers(exchange, out)
            verdicts = {"fold": external_fold(exchange, key, wrapped), **run.verdicts}
            verdicts["server tools"] = server_tools_shown(key, run)
            found.external[key.split("/")[0], EXPECTED[key]["protocol"]].append((key, verdicts))
    return found


def wrong(found: Results) -> list[str]:
    """`exchange: column` for every verdict that is wrong."""
    rows = [*found.corpus.values(), *found.external.values()]
    return [
        f"{name}: {column}" for row in rows for name, verdicts in row for column, ok in verdicts.items() if ok is False
    ]


# -- the page ------------------------------------------------------------------------------


def _table(first: str, rows: dict[tuple[str, str], list[tuple[str, Verdicts]]], columns: tuple[str, ...]) -> list[str]:
    lines = [
        f"| {first} | protocol | exchanges | " + " | ".join(columns) + " |",
        "|---|---|---:|" + "---|" * len(columns),
    ]
    for (name, protocol), exchanges in sorted(rows.items(), key=lambda item: (item[0][1], item[0][0])):
        cells = []
        for column in columns:
            verdicts = [v[column] for _, v in exchanges if v[column] is not None]
            cells.append("—" if not verdicts else ("✅" if all(verdicts) else "✗"))
        lines.append(f"| {name} | {protocol} | {len(exchanges)} | " + " | ".join(cells) + " |")
    return lines


def page(found: Results) -> str:
    """The whole of docs/compatibility.md, from the verdicts."""
    streams = sum(len(row) for row in found.corpus.values())
    return "\n".join(
        [
            "# Compatibility with real providers",
            "",
            "Generated by `make compatibility` (`docs/compatibility.py`) from runs of every layer of chatcap",
            "over two sets of real recordings. ✅ every exchange that exercises it is right; ✗ at least one",
            "is not; — none exercises it.",
            "",
            "- **usage checks**: the provider's figures add up, and the usage-mismatch alarm fires only where",
            f"  the usage really disagrees with the text ({len(TRUE_MISMATCHES)} corpus streams, `tests/test_usage.py`).",
            "- **show**: `chatcap show` (`export.plain_text`) prints the answer, each server tool's request",
            "  (query, URL, code) and the error message exactly as received.",
            f"- **transcript**: the Markdown transcript holds the first {FIRST_WORDS} words of each of those, in",
            "  order (it makes captured text inert, so words are compared, not characters).",
            "- **JSONL**: every message and tool of the exported line validates as the `openai` SDK's",
            "  `ChatCompletionMessageParam` / `ChatCompletionToolParam`.",
            "",
            f"## {streams} streams recorded from real providers",
            "",
            "The corpus `tests/data/real/` (other projects' recordings; sources and licences in its",
            "`PROVENANCE.md`), each stream with its recorded request. Fold (reconstruction), aspect by aspect:",
            "",
            "- **text, reasoning, tool calls, usage, errors**: as the official SDK accumulates the stream where",
            "  the SDK is right, as the stream says where it is not; Gemini, which has no SDK accumulator, as",
            "  its parts concatenate.",
            "- **timing**: a bare recorded body dates itself only by chat chunks' `created`; the other",
            "  protocols' bodies carry no clock of their own.",
            "",
            *_table("provider", found.corpus, ASPECTS + LAYERS),
            "",
            f"## {sum(len(row) for row in found.external.values())} exchanges recorded by other projects' test suites",
            "",
            "`tests/data/external/` (sources in its `PROVENANCE.md`), each loaded from the `{request, response}`",
            "JSON dump its `wrap.py` writes; no usage-mismatch alarm is right on any of them.",
            "",
            "- **fold**: protocol, status, served model, text, reasoning, refusal, tool calls, error and usage",
            "  as stated are what `expected.json` says (read from the recordings, not by running chatcap).",
            "- **server tools**: each tool the provider ran (its query, URL or code, as `expected.json` names",
            "  it) appears in `show` and in the transcript.",
            "",
            *_table("source", found.external, EXTERNAL_COLUMNS),
            "",
        ]
    )


def render(corpus: Path) -> str:
    """The whole of docs/compatibility.md, from a run over `corpus` and the external recordings."""
    return page(results(corpus))


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else REAL_CORPUS
    if not corpus.is_dir():
        sys.exit(f"compatibility: no corpus at {corpus}")
    found = results(corpus)
    TARGET.write_text(page(found), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(found.corpus)} + {len(found.external)} rows")
    for verdict in wrong(found):
        print(f"✗ {verdict}")


if __name__ == "__main__":
    main()
