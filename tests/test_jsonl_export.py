"""`chatcap export --format jsonl` writes OpenAI chat-format lines that the `openai` SDK's own
types accept, for every conversation chatcap can load: messages as `ChatCompletionMessageParam`,
tools as `ChatCompletionToolParam`. A provider's built-in tools are not OpenAI tool input:
they are left out of `tools` and named in the line's `metadata`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundled import REAL_CORPUS, captures_as_cloned
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from pydantic import TypeAdapter

import analyzer
from analyzer import export

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
BUILTIN = DATA / "builtin_tools" / "requests.jsonl"
# Everything chatcap can load that the project keeps: recordings, bundled captures, fixtures.
INPUTS = [
    *sorted(REAL_CORPUS.glob("*.sse")),
    captures_as_cloned(),
    *(DATA / name for name in ("protocols", "har", "ingest", "builtin_tools", "external", "errors", "quirks")),
]
MESSAGE = TypeAdapter(ChatCompletionMessageParam)
TOOL = TypeAdapter(ChatCompletionToolParam)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_builtin_tools_are_named_in_metadata_not_offered_as_tools(tmp_path: Path) -> None:
    lines = _lines(export.jsonl(analyzer.load(BUILTIN), tmp_path / "out.jsonl"))
    assert [line.get("metadata", {}).get("builtin_tools") for line in lines] == [
        ["web_search_20250305", "code_execution_20250825"],
        ["codeExecution", "googleSearch"],
        ["web_search", "file_search"],
        None,  # chat/completions' web_search_options is no tool: nothing to name
    ]
    for line in lines:
        assert [tool["function"]["name"] for tool in line["tools"]] == ["get_weather"]


def test_every_line_validates_with_the_openai_sdk_types(tmp_path: Path) -> None:
    exchanges = analyzer.load([path for path in INPUTS if path.exists()], progress=False)
    lines = _lines(export.jsonl(exchanges, tmp_path / "all.jsonl"))
    assert len(lines) > 100
    for number, line in enumerate(lines, 1):
        assert set(line) <= {"messages", "tools", "metadata"}, number
        for message in line["messages"]:
            _drain(MESSAGE.validate_python(message))
        for tool in line.get("tools", []):
            _drain(TOOL.validate_python(tool))


def _drain(value: object) -> None:
    """Read every list the SDK's types declare as `Iterable`: pydantic validates those items
    only when they are read, so a tool call with `"id": null` passes until then."""
    if isinstance(value, dict):
        for item in value.values():
            _drain(item)
    elif not isinstance(value, str | bytes) and hasattr(value, "__iter__"):
        for item in value:
            _drain(item)


def test_a_history_without_tool_ids_gets_them_in_order_and_says_so(tmp_path: Path) -> None:
    """Writer's API takes a tool call with `id: null` and a result without `tool_call_id`;
    OpenAI's format needs both: each result answers the earliest call still unanswered."""
    exchanges = analyzer.load(DATA / "builtin_tools" / "no_ids.jsonl")
    [line] = _lines(export.jsonl(exchanges, tmp_path / "out.jsonl"))
    call = line["messages"][1]["tool_calls"][0]
    assert call["id"] == "call_chatcap_1" and line["messages"][2]["tool_call_id"] == "call_chatcap_1"
    assert line["metadata"]["filled_ids"] == 2
    for message in line["messages"]:
        _drain(MESSAGE.validate_python(message))


@pytest.mark.parametrize("tool", [{"type": "web_search_20250305", "name": "web_search"}, {"googleSearch": {}},
                                  {"type": "web_search"}])  # fmt: skip
def test_the_sdk_types_reject_builtin_tools_so_the_check_above_can_fail(tool: dict) -> None:
    with pytest.raises(ValueError):
        TOOL.validate_python(tool)
