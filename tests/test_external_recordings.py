"""Real exchanges recorded by other projects' test suites against the providers' APIs
(tests/data/external, each file's source in PROVENANCE.md): each one loads in every input
format chatcap reads, reconstructs as the recording says (expected.json, written by reading the
recordings, not by running chatcap), and goes through every layer.

The checks marked xfail are places where chatcap is wrong today; each says how.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import analyzer
import analyzer.export
import analyzer.frames
from analyzer import conversations, threads
from analyzer.cli import main as cli
from analyzer.model import Exchange, Reconstruction
from analyzer.protocols import server_tools

EXTERNAL = Path(__file__).resolve().parent / "data" / "external"
EXPECTED: dict[str, dict[str, Any]] = json.loads((EXTERNAL / "expected.json").read_text(encoding="utf-8"))
KEYS = sorted(EXPECTED)
FORMATS = ("har", "jsonl", "dump", "http", "body", "flows")
WITH_SERVER_TOOLS = [key for key in KEYS if EXPECTED[key].get("server_tools")]
WITH_BUILTIN_TOOLS = [key for key in KEYS if EXPECTED[key].get("request_builtin_tools")]
ANSWERED = [key for key in KEYS if EXPECTED[key]["status"] < 400]

_spec = importlib.util.spec_from_file_location("external_wrap", EXTERNAL / "wrap.py")
assert _spec and _spec.loader
wrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wrap)

# Where chatcap is wrong today: (check, format or "*", exchange) -> what it gets wrong.
KNOWN: dict[tuple[str, str, str], str] = {}


def cases(check: str, keys: list[str], formats: tuple[str, ...] | None = None) -> list[Any]:
    """Parameters for one check (key, or key and format), marked xfail where chatcap is known wrong."""
    params = []
    for key in keys:
        for fmt in formats or ("*",):
            reason = KNOWN.get((check, fmt, key))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            values = (key,) if formats is None else (key, fmt)
            params.append(pytest.param(*values, marks=marks, id=key if formats is None else f"{fmt}-{key}"))
    return params


@pytest.fixture(scope="module")
def wrapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("external")
    wrap.write_all(out)
    return out


def wrapped_file(root: Path, fmt: str, key: str) -> Path:
    stem = key.replace("/", "__")
    (found,) = [path for path in (root / fmt).iterdir() if path.name.rsplit(".", 1)[0] == stem]
    return found


def loaded(root: Path, fmt: str, key: str) -> Exchange:
    if fmt == "flows":
        pytest.importorskip("mitmproxy")
    exchanges = analyzer.load(wrapped_file(root, fmt, key))
    assert len(exchanges) == 1
    return exchanges[0]


def strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, JSON held in strings opened too."""
    if isinstance(value, str):
        yield value
        if value[:1] in "{[":
            try:
                inner = json.loads(value)
            except ValueError:
                return
            yield from strings(inner)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_the_recordings_are_many_and_varied() -> None:
    sources = {json.loads(path.read_text())["source"]["repo"] for path in EXTERNAL.glob("*/*.exchange.json")}
    assert len(EXPECTED) >= 60 and len(sources) >= 6
    assert {e["protocol"] for e in EXPECTED.values()} == {
        "openai_chat",
        "openai_responses",
        "anthropic_messages",
        "gemini",
    }
    assert len(list(EXTERNAL.glob("*/*.exchange.json"))) == len(EXPECTED)


def test_every_source_repositorys_licence_goes_with_its_recordings() -> None:
    """MIT and Apache-2.0 ask for their notice to accompany copies: LICENSES.md gives each source
    repository's, at the commit its recordings come from, under the licence PROVENANCE.md names."""
    licences = (EXTERNAL / "LICENSES.md").read_text(encoding="utf-8")
    headings = [line.removeprefix("## ") for line in licences.splitlines() if line.startswith("## ")]
    for path in EXTERNAL.glob("*/*.exchange.json"):
        source = json.loads(path.read_text())["source"]
        (heading,) = [h for h in headings if source["repo"] in h.split(": ")[1].split(", ")]
        assert heading.startswith(f"{source['licence']}: "), path.name
        assert f"`{source['commit']}`" in licences, path.name
    # The Apache License's full text, which LICENSES.md refers to rather than repeats.
    real = (EXTERNAL.parent / "real" / "LICENSES.md").read_text(encoding="utf-8")
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in real


@pytest.mark.parametrize(("key", "fmt"), cases("load", KEYS, FORMATS))
def test_every_format_loads_as_one_exchange(wrapped: Path, key: str, fmt: str) -> None:
    loaded(wrapped, fmt, key)


def check_reconstruction(exchange: Exchange, rec: Reconstruction, expected: dict[str, Any], fmt: str) -> None:
    bare = fmt == "body"  # a bare body has no request and no status line
    failed = expected["status"] >= 400
    if not (bare and failed):  # a bare OpenAI error object names no protocol
        assert rec.protocol == expected["protocol"]
    assert rec.streamed == expected["streamed"]
    if not bare:
        assert exchange.response is not None and exchange.response.status == expected["status"]
    if "error_message" in expected:
        assert rec.error is not None and expected["error_message"] in json.dumps(rec.error, ensure_ascii=False)
    if failed:
        return
    assert rec.served_model == expected["served_model"]
    assert len(rec.choices) == len(expected["choices"])
    for choice, want in zip(rec.choices, expected["choices"], strict=True):
        if "text" in want:
            assert choice.content == want["text"]
        else:
            assert choice.content is not None and len(choice.content) == want["text_length"]
            assert choice.content.startswith(want["text_head"]) and choice.content.endswith(want["text_tail"])
        assert bool(choice.reasoning) == want["reasoning"]
        assert choice.refusal == want.get("refusal")
        calls = [(call.name, json.loads(call.arguments or "{}")) for call in choice.tool_calls]
        assert calls == [(call["name"], call["arguments"]) for call in want["tool_calls"]]


@pytest.mark.parametrize(("key", "fmt"), cases("reconstruct", KEYS, FORMATS))
def test_reconstruction_matches_the_recording(wrapped: Path, key: str, fmt: str) -> None:
    exchange = loaded(wrapped, fmt, key)
    check_reconstruction(exchange, exchange.reconstruct(), EXPECTED[key], fmt)


@pytest.mark.parametrize("key", cases("usage", ANSWERED))
def test_usage_is_kept_as_the_provider_stated_it(wrapped: Path, key: str) -> None:
    expected = EXPECTED[key]
    rec = loaded(wrapped, "dump", key).reconstruct()
    if expected["usage_stated"] is None:
        assert rec.usage is None or rec.usage.source != "reported"
        return
    assert rec.usage is not None and rec.usage.source == "reported"
    for field, value in expected["usage_stated"].items():
        if not isinstance(value, (dict, list)):
            assert rec.usage.raw.get(field) == value, field
    for field, value in expected["usage"].items():
        assert getattr(rec.usage, field) == value, field


@pytest.mark.parametrize("key", cases("server_tools", WITH_SERVER_TOOLS))
def test_server_side_tools_are_kept(wrapped: Path, key: str) -> None:
    rec = loaded(wrapped, "dump", key).reconstruct()
    tools = [s for s in server_tools.segments(rec) if isinstance(s, server_tools.ServerTool)]
    kept = [text for t in tools for text in (t.name, t.request, t.result, *(part for pair in t.sources for part in pair))
            if text]  # fmt: skip
    for tool in EXPECTED[key]["server_tools"]:
        assert any(tool["needle"] in text for text in kept), tool


@pytest.mark.parametrize("key", cases("transcript", WITH_SERVER_TOOLS))
def test_server_side_tools_are_shown_in_the_transcript(wrapped: Path, key: str, tmp_path: Path) -> None:
    exchange = loaded(wrapped, "dump", key)
    analyzer.export.markdown([exchange], tmp_path)
    # Each file's first line is its title, which repeats the prompt.
    transcript = "\n".join(path.read_text(encoding="utf-8").split("\n", 1)[-1] for path in tmp_path.glob("*.md"))
    # The query, url or code must show beyond where the prompt or the answer already says it.
    body = exchange.request.body if exchange.request else None  # vercel/ai's fixtures keep no request
    choices = exchange.reconstruct().choices
    said = [
        *(strings(json.loads(body)) if body else []),
        *(c.content or "" for c in choices),
        *(c.reasoning or "" for c in choices),
    ]
    for tool in EXPECTED[key]["server_tools"]:
        needle = tool["needle"]
        assert transcript.count(needle) > sum(text.count(needle) for text in said), tool


@pytest.mark.parametrize("key", cases("jsonl_tools", WITH_BUILTIN_TOOLS))
def test_jsonl_export_lists_only_function_tools(wrapped: Path, key: str, tmp_path: Path) -> None:
    analyzer.export.jsonl([loaded(wrapped, "dump", key)], tmp_path / "conversations.jsonl")
    for line in (tmp_path / "conversations.jsonl").read_text(encoding="utf-8").splitlines():
        for tool in json.loads(line).get("tools", []):
            assert tool.get("type") == "function" and tool.get("function", {}).get("name"), tool


@pytest.fixture(scope="module")
def warnings_by_key(wrapped: Path) -> dict[str, list[str]]:
    """The frames' warnings of every exchange (one frame for all: building it costs)."""
    exchanges = {key: loaded(wrapped, "dump", key) for key in KEYS}
    frame = analyzer.frames.exchanges(exchanges.values())
    by_id = dict(zip(frame["id"], frame["warnings"], strict=True))
    return {key: list(by_id[exchange.id]) for key, exchange in exchanges.items()}


@pytest.mark.parametrize("key", cases("usage_alarm", ANSWERED))
def test_no_usage_mismatch_on_the_providers_own_usage(warnings_by_key: dict[str, list[str]], key: str) -> None:
    assert "usage_mismatch" not in warnings_by_key[key]


def test_a_conversation_resumed_on_another_host_is_another_conversation(wrapped: Path) -> None:
    """A conversation never spans hosts (issue 18): comparing providers on the same prompts is
    what the tool is for, so Anthropic's turn 2 after Gemini's turn 1 starts its own."""
    first = loaded(wrapped, "dump", "mirascope/gemini-resume-turn1")
    second = loaded(wrapped, "dump", "mirascope/anthropic-resume-turn2-after-gemini")
    found = threads.threads([first, second])
    assert found[second.id].conversation != found[first.id].conversation
    assert found[second.id].parent is None and found[second.id].turn == 2


def test_every_layer_runs_over_all_of_them(wrapped: Path, tmp_path: Path) -> None:
    every = tmp_path / "all"
    every.mkdir()
    for path in (wrapped / "dump").iterdir():
        (every / path.name).write_bytes(path.read_bytes())
    result = subprocess.run(
        [sys.executable, "-m", "analyzer", "summary", str(every), "--last", str(len(EXPECTED))],  # a row each
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"{len(EXPECTED)} exchange(s)" in result.stdout
    exchanges = analyzer.load(every)
    assert len(exchanges) == len(EXPECTED)
    runner = CliRunner()
    for exchange in exchanges:
        shown = runner.invoke(cli, ["show", exchange.source, "--id", exchange.id])
        assert shown.exit_code == 0, (exchange.id, shown.output)
    for fmt in ("markdown", "html", "jsonl", "csv", "parquet"):
        shown = runner.invoke(cli, ["export", str(every), "--format", fmt, "--out", str(tmp_path / fmt)])
        assert shown.exit_code == 0, (fmt, shown.output)
        assert any((tmp_path / fmt).iterdir())
    for to in ("har", "jsonl"):
        out = tmp_path / f"converted.{to}"
        shown = runner.invoke(cli, ["convert", str(every), "--to", to, "--out", str(out)])
        assert shown.exit_code == 0, (to, shown.output)
        assert len(analyzer.load(out)) == len(EXPECTED)
    assert len(analyzer.frames.exchanges(exchanges)) == len(EXPECTED)
    for frame in (analyzer.frames.chunks, analyzer.frames.messages, analyzer.frames.tool_calls):
        frame(exchanges)
    assert len(threads.threads(exchanges)) == len(EXPECTED)
    assert sum(len(c.turns) for c in conversations.conversations(exchanges)) == len(EXPECTED)
