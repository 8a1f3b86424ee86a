"""Transcript exports: one per conversation, byte-stable (golden files), redacted always,
and the JSONL in OpenAI's chat format as its SDK types define it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from bundled import CAPTURES, captures_as_cloned, copy_bundled
from pydantic import TypeAdapter

import analyzer
from analyzer import export
from analyzer.conversations import conversations
from analyzer.model import Exchange, Request, Response
from analyzer.protocols import request_messages

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", ROOT / "tests" / "data" / "make_golden.py")
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    golden.render(out)
    return out


def files(directory: Path) -> dict[Path, bytes]:
    return {p.relative_to(directory): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("fmt", golden.FORMATS)
def test_exports_are_the_golden_files(rendered: Path, fmt: str) -> None:
    """Byte-stable output for every bundled input; `make golden` rewrites them (review the diff)."""
    ours, kept = files(rendered / fmt), files(GOLDEN / fmt)
    assert sorted(ours) == sorted(kept), "run `make golden` and review the diff"
    for name, data in ours.items():
        assert data == kept[name], f"{fmt}/{name} differs: run `make golden` and review the diff"


def test_golden_files_do_not_read_what_a_user_adds_to_captures(tmp_path: Path) -> None:
    """`chatcap capture` records into captures/live/ (README) and anything may land beside the
    bundled captures: the golden files are made of the bundled ones alone."""
    captures = copy_bundled(CAPTURES, tmp_path / "checkout")
    (captures / "live").mkdir()
    for stray in (captures / "live" / "x.jsonl", captures / "stray.jsonl"):  # a real capture: it would load
        stray.write_bytes((CAPTURES / "tool_calls.jsonl").read_bytes())
    golden.render(tmp_path / "out", captures)
    for fmt in golden.FORMATS:
        assert files(tmp_path / "out" / fmt) == files(GOLDEN / fmt), fmt


def test_one_markdown_transcript_per_conversation(rendered: Path) -> None:
    xs = list(analyzer.load(captures_as_cloned()))
    chats = [c for c in conversations(xs) if c.turns]
    assert len(list((rendered / "markdown").glob("*.md"))) == len(chats)
    baking = next((rendered / "markdown").glob("*-how-long-should-i-proof-a-sourdough-loaf.md")).read_text()
    # Six exchanges, one transcript: each message once, the branches marked, a footer per reply.
    assert baking.count("How long should I proof a sourdough loaf?") == 2  # the title and the question
    assert "Regenerated:" in baking and "Edited:" in baking
    assert baking.count("<sub>gpt-4o-mini-2024-07-18 · TTFT") == 6
    assert "### Assistant (as sent back)" in baking  # the reply the user cut before resending


def test_reasoning_and_tool_rounds_in_a_transcript(rendered: Path) -> None:
    (weather,) = (rendered / "markdown").glob("*-which-is-warmer-right-now-*.md")
    text = weather.read_text()
    assert text.index("<details><summary>Reasoning</summary>") < text.index("**Tool call** `get_weather`")
    assert "### Tool result: `get_weather`" in text
    quiet = export.markdown(analyzer.load(ROOT / "captures" / "tool_calls.jsonl"), rendered / "quiet", reasoning=False)
    assert all("Reasoning" not in path.read_text() for path in quiet)


# The chat message and tool types the openai SDK sends: what fine-tuning tools accept.
def _openai_types() -> tuple[TypeAdapter[Any], TypeAdapter[Any]]:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

    return TypeAdapter(list[ChatCompletionMessageParam]), TypeAdapter(list[ChatCompletionToolParam])


def test_jsonl_lines_are_openai_chat_messages_and_tools(rendered: Path) -> None:
    messages_type, tools_type = _openai_types()
    lines = [orjson.loads(line) for line in (rendered / "jsonl" / "conversations.jsonl").read_bytes().splitlines()]
    assert lines
    for line in lines:
        assert set(line) <= {"messages", "tools"}
        messages_type.validate_python(line["messages"], strict=False)
        tools_type.validate_python(line.get("tools", []))
        assert line["messages"][-1]["role"] == "assistant"
    assert any("reasoning_content" in m for line in lines for m in line["messages"])  # reasoning=True
    assert any(m.get("tool_calls") for line in lines for m in line["messages"])


def test_jsonl_round_trip_gives_back_the_conversation(rendered: Path) -> None:
    """Each line read back with analyzer.parse (as a request and its reply) is the same conversation."""
    for line in (rendered / "jsonl" / "conversations.jsonl").read_bytes().splitlines():
        messages = orjson.loads(line)["messages"]
        dump = {
            "request": {"method": "POST", "url": "https://host/v1/chat/completions", "body": {"messages": messages[:-1]}},
            "response": {"status": 200, "body": {"object": "chat.completion", "choices": [
                {"index": 0, "message": messages[-1], "finish_reason": "stop"}]}},
        }  # fmt: skip
        (exchange,) = analyzer.parse(orjson.dumps(dump))
        history = request_messages(exchange)
        assert [(m["role"], m.get("content")) for m in history] == [
            (m["role"], m.get("content")) for m in messages[:-1]
        ]
        reply = exchange.reconstruct().to_openai()["choices"][0]["message"]
        assert reply["content"] == messages[-1].get("content")
        assert reply.get("tool_calls") == messages[-1].get("tool_calls")


def test_csv_and_parquet_tables(tmp_path: Path) -> None:
    import pandas as pd

    xs = list(analyzer.load(ROOT / "captures" / "four_protocols.jsonl"))
    written = export.tables(xs, tmp_path / "csv", "csv")
    assert [p.name for p in written] == ["exchanges.csv", "chunks.csv", "messages.csv", "tool_calls.csv"]
    written = export.tables(xs, tmp_path / "parquet", "parquet")
    assert {p.relative_to(tmp_path / "parquet").parts[0] for p in written} == {
        "exchanges",
        "chunks",
        "messages",
        "tool_calls",
    }
    assert all(p.name == "part-0.parquet" and p.parent.name.startswith("date=") for p in written)
    read = pd.read_csv(tmp_path / "csv" / "exchanges.csv")
    assert list(read["protocol"])[:3] == ["anthropic_messages", "anthropic_messages", "openai_responses"]
    messages = pd.concat(pd.read_parquet(p) for p in written if p.parts[-3] == "messages")
    assert len(messages) == len(pd.read_csv(tmp_path / "csv" / "messages.csv")) > 10


# -- secrets: planted in the headers, the URL query and the body, found in no export -------------

SECRETS = {
    "header": "sk-proj-HEADER0planted0secret0for0chatcap0tests0000000000000",
    "query": "AIzaSyPLANTED0query0secret0chatcap0test0",
    "body": "sk-ant-api03-BODY0planted0secret0for0chatcap0tests00000000000000000",
}


def planted() -> Exchange:
    request = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": f"Use the key {SECRETS['body']} for the tool."},
        {"role": "user", "content": "hello"}]}  # fmt: skip
    reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Your key is {SECRETS['body']}."},
                          "finish_reason": "stop"}]}  # fmt: skip
    return Exchange(
        id="planted",
        source="<test>",
        format="test",
        request=Request(
            method="POST",
            url=f"https://api.example.com/v1/chat/completions?key={SECRETS['query']}",
            headers=[("authorization", f"Bearer {SECRETS['header']}")],
            body=orjson.dumps(request),
        ),
        response=Response(status=200, headers=[("content-type", "application/json")], body=orjson.dumps(reply)),
    )


def test_planted_secrets_appear_in_no_export(tmp_path: Path) -> None:
    xs = [planted()]
    export.markdown(xs, tmp_path / "markdown")
    export.html(xs, tmp_path / "html")
    export.jsonl(xs, tmp_path / "jsonl" / "conversations.jsonl", reasoning=True)
    export.tables(xs, tmp_path / "csv", "csv")
    export.tables(xs, tmp_path / "parquet", "parquet")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 12
    for path in files:
        data = path.read_bytes()
        for where, secret in SECRETS.items():
            assert secret.encode() not in data and secret[12:40].encode() not in data, f"{where} secret in {path.name}"


def test_cli_export_filters_and_one_conversation(tmp_path: Path) -> None:
    def chatcap(*args: str | Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "analyzer", "export", "captures/", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=captures_as_cloned().parent)

    result = chatcap("--format", "markdown", "--model", "claude*", "--out", tmp_path / "claude")
    assert result.returncode == 0, result.stderr
    assert all("claude" in p.read_text() for p in (tmp_path / "claude").glob("*.md"))
    assert len(list((tmp_path / "claude").glob("*.md"))) == 2
    result = chatcap("--format", "markdown", "--host", "localhost", "--out", tmp_path / "local")
    local = list((tmp_path / "local").glob("*.md"))
    assert result.returncode == 0 and local and all("**endpoint**: localhost" in p.read_text() for p in local)
    result = chatcap("--format", "jsonl", "--conversation", "c1", "--out", tmp_path / "one")
    assert result.returncode == 0 and (tmp_path / "one" / "conversations.jsonl").read_text().count("\n") == 1
    result = chatcap("--since", "2031-01-01", "--out", tmp_path / "none")
    assert result.returncode == 1 and result.stderr.strip() == "Error: no exchange matches the filter"
