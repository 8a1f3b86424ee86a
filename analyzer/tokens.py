"""Token counts for exchanges whose stream reported none (seed 002): an estimate from the
text, by script, always labelled `estimated` and never mixed with reported figures.

No tokenizer is used: tiktoken needs its vocabulary downloaded, and chatcap needs no network.
The heuristic, per character class, is what BPE vocabularies of the GPT-4o / Llama-3 / Qwen
generation do on average:

- ASCII: ~4 characters per token (words, with the space before them, and punctuation);
- CJK ideographs, kana, hangul: ~0.8 tokens per character;
- other letters (Cyrillic, Greek, Arabic, accented Latin, …): ~2.5 characters per token;
- anything else outside the BMP (emoji and the like): ~1.5 tokens per character.

Measured against the providers' own counts on the real corpus (`docs/tokens.md`).
"""

from __future__ import annotations

import re
from typing import Any

from analyzer.model import Reconstruction, Usage

# Per message, chat templates add a few tokens (role markers, separators).
MESSAGE_OVERHEAD = 4
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")


def estimate(text: str) -> int:
    """Estimated tokens in `text` (0 for no text)."""
    if not text:
        return 0
    if text.isascii():
        return max(1, round(len(text) / 4))
    cjk = len(_CJK.findall(text))
    astral = len(_ASTRAL.findall(text))
    ascii_chars = len(text.encode("ascii", "ignore"))
    other = len(text) - cjk - astral - ascii_chars
    return max(1, round(ascii_chars / 4 + cjk * 0.8 + other / 2.5 + astral * 1.5))


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def prompt_estimate(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    """Estimated prompt tokens of a request's messages (and tool definitions, as JSON text)."""
    import orjson

    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD + estimate(_text_of(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += estimate(str(function.get("name") or "")) + estimate(str(function.get("arguments") or ""))
    if tools:
        total += estimate(orjson.dumps(tools).decode())
    return total


def completion_estimate(rec: Reconstruction) -> int:
    """Estimated completion tokens of every choice: content, reasoning, refusal, tool calls."""
    total = 0
    for choice in rec.choices:
        for text in (choice.content, choice.reasoning, choice.refusal):
            total += estimate(text or "")
        for call in choice.tool_calls:
            total += estimate(call.name or "") + estimate(call.arguments)
    return total


def generated_estimate(rec: Reconstruction) -> int:
    """Estimated tokens of what the model wrote besides its reasoning: content, refusals,
    tool calls, and its inputs to server-side tools (code to run, search queries)."""
    total = 0
    for choice in rec.choices:
        total += estimate(choice.content or "") + estimate(choice.refusal or "")
        for call in choice.tool_calls:
            total += estimate(call.name or "") + estimate(call.arguments)
        total += estimate(server_tool_input(choice.extras.get("server_tools")))
    return total


def server_tool_input(items: Any) -> str:
    """What the model wrote for server-side tools, as text: Anthropic's `server_tool_use`
    input, Gemini's `executableCode`, a Responses call's action (query, code, arguments);
    results the tools fed back are prompt, not generation, and are left out."""
    import orjson

    parts: list[str] = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        if item.get("type") in ("server_tool_use", "mcp_tool_use"):
            parts.append(orjson.dumps(item.get("input")).decode() if item.get("input") is not None else "")
        elif isinstance(item.get("executableCode"), dict):
            parts.append(str(item["executableCode"].get("code") or ""))
        elif str(item.get("type", "")).endswith("_call"):
            for key in ("action", "code", "arguments", "queries", "input"):
                if item.get(key) is not None:
                    value = item[key]
                    parts.append(value if isinstance(value, str) else orjson.dumps(value, default=str).decode())
    return "\n".join(parts)


def usage_or_estimate(rec: Reconstruction, messages: list[dict[str, Any]], tools: list[Any] | None) -> Usage | None:
    """The reported usage, or an estimate labelled as one when the stream reported none.
    None when nothing was generated (an error before the first token, a 429): providers do
    not bill a request that produced nothing, so no tokens are made up for it."""
    if rec.usage is not None:
        return rec.usage
    completion = completion_estimate(rec)
    if not completion:
        return None
    prompt = prompt_estimate(messages, tools) if messages else None
    reasoning = sum(estimate(c.reasoning or "") for c in rec.choices) or None
    total = completion + (prompt or 0)
    return Usage(
        raw={},
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        reasoning_tokens=reasoning,
        source="estimated",
    )
