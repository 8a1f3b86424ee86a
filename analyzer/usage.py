"""Token usage in every protocol's shape, folded into one `Usage` (OpenAI's meaning of each
figure) with the raw object kept:

- OpenAI chat/completions: `prompt_tokens` (cached ones included, `prompt_tokens_details.
  cached_tokens`), `completion_tokens` (reasoning included, `completion_tokens_details.
  reasoning_tokens`); DeepSeek's `prompt_cache_hit_tokens`; Groq's copy in `x_groq.usage`
  is handled by the protocol.
- OpenAI Responses: `input_tokens` (cached included, `input_tokens_details.cached_tokens`),
  `output_tokens` (reasoning included, `output_tokens_details.reasoning_tokens`).
- Anthropic Messages: `input_tokens` counts only what was neither read from nor written to
  the cache, so the prompt is `input_tokens + cache_read_input_tokens +
  cache_creation_input_tokens`; `output_tokens` (thinking included:
  `output_tokens_details.thinking_tokens` where the API reports it).
- Gemini `usageMetadata`: `promptTokenCount` (cached included, `cachedContentTokenCount`),
  `candidatesTokenCount` (the answer) plus `thoughtsTokenCount` (the reasoning, counted
  apart by Gemini, included here as OpenAI does), `totalTokenCount`.
"""

from __future__ import annotations

from typing import Any

from analyzer.model import Usage


def _int(value: Any) -> int | None:
    return value if type(value) is int else None  # JSON gives int or bool, never a subclass of its own


def _details(raw: dict[str, Any], name: str, key: str) -> int | None:
    details = raw.get(name)
    return _int(details.get(key)) if isinstance(details, dict) else None


def _sum(*values: int | None) -> int | None:
    """The figures' sum, or None when none is given."""
    total = None
    for value in values:
        if value is not None:
            total = value if total is None else total + value
    return total


def normalise(raw: dict[str, Any]) -> Usage:
    """`raw` in any protocol's shape (see the module docstring) as a `Usage`."""
    if "promptTokenCount" in raw or "candidatesTokenCount" in raw or "totalTokenCount" in raw:
        thoughts = _int(raw.get("thoughtsTokenCount"))
        return Usage(
            raw=raw,
            prompt_tokens=_int(raw.get("promptTokenCount")),
            completion_tokens=_sum(_int(raw.get("candidatesTokenCount")), thoughts),
            total_tokens=_int(raw.get("totalTokenCount")),
            cached_prompt_tokens=_int(raw.get("cachedContentTokenCount")),
            reasoning_tokens=thoughts,
        )
    if "input_tokens" in raw and "prompt_tokens" not in raw:
        if "cache_read_input_tokens" in raw or "cache_creation_input_tokens" in raw:  # Anthropic
            read = _int(raw.get("cache_read_input_tokens"))
            written = _int(raw.get("cache_creation_input_tokens"))
            prompt = _sum(_int(raw.get("input_tokens")), read, written)
            output = _int(raw.get("output_tokens"))
            thinking = _details(raw, "output_tokens_details", "thinking_tokens")
            # In Usage's order (raw, prompt, completion, total, cached prompt, reasoning, cache
            # write): by position, which builds it in half the time keywords take (every stream).
            return Usage(raw, prompt, output, _sum(prompt, output), read, thinking, written)
        prompt, output = _int(raw.get("input_tokens")), _int(raw.get("output_tokens"))
        total = _int(raw.get("total_tokens"))
        return Usage(  # OpenAI Responses (and Anthropic without cache fields)
            raw=raw,
            prompt_tokens=prompt,
            completion_tokens=output,
            total_tokens=total if total is not None else _sum(prompt, output),
            cached_prompt_tokens=_details(raw, "input_tokens_details", "cached_tokens"),
            cache_write_tokens=_details(raw, "input_tokens_details", "cache_write_tokens"),
            reasoning_tokens=_details(raw, "output_tokens_details", "reasoning_tokens"),
        )
    cached = _details(raw, "prompt_tokens_details", "cached_tokens")
    if cached is None:
        cached = _int(raw.get("prompt_cache_hit_tokens"))  # DeepSeek
    reasoning = _details(raw, "completion_tokens_details", "reasoning_tokens")
    if reasoning is None:
        reasoning = _int(raw.get("reasoning_tokens"))  # a few servers put it at the top level
    return Usage(
        raw=raw,
        prompt_tokens=_int(raw.get("prompt_tokens")),
        completion_tokens=_int(raw.get("completion_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        cached_prompt_tokens=cached,
        reasoning_tokens=reasoning,
    )
