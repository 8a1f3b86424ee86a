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
  apart by Gemini, included here as OpenAI does), `totalTokenCount`. `toolUsePromptTokenCount`
  (what server-side tools such as code execution and search fed back to the model) is prompt
  too: `totalTokenCount` counts it, and it is billed as input.

`identity_problem` checks what a provider states against itself: the parts it reports must
add up to the total it reports (where it reports one: Anthropic does not).
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
            prompt_tokens=_sum(_int(raw.get("promptTokenCount")), _int(raw.get("toolUsePromptTokenCount"))),
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
            return Usage(
                raw=raw,
                prompt_tokens=prompt,
                completion_tokens=output,
                total_tokens=_sum(prompt, output),
                cached_prompt_tokens=read,
                reasoning_tokens=thinking,
                cache_write_tokens=written,
            )
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
    if cached is None:
        cached = _int(raw.get("cached_tokens"))  # Together, at the top level
    reasoning = _details(raw, "completion_tokens_details", "reasoning_tokens")
    if reasoning is None:
        reasoning = _int(raw.get("reasoning_tokens"))  # a few servers put it at the top level
    prompt, completion, total = (
        _int(raw.get("prompt_tokens")),
        _int(raw.get("completion_tokens")),
        _int(raw.get("total_tokens")),
    )
    if reasoning and completion is not None and prompt is not None and total == prompt + completion + reasoning:
        completion += reasoning  # xAI (Grok): reasoning left out of completion_tokens, as its total shows
    return Usage(
        raw=raw,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cached_prompt_tokens=cached,
        reasoning_tokens=reasoning,
    )


def identity_problem(usage: Usage) -> str | None:
    """How the provider's stated parts fail to add up to its stated total, or None when they
    do (or when it states no total to check)."""
    raw = usage.raw
    if "totalTokenCount" in raw:  # Gemini
        total_key, parts = "totalTokenCount", _parts(raw, "promptTokenCount", "toolUsePromptTokenCount",
                                                    "candidatesTokenCount", "thoughtsTokenCount")  # fmt: skip
        sums = [sum(parts.values())]
    elif "prompt_tokens" in raw:  # chat/completions; xAI leaves reasoning out of completion_tokens
        total_key, parts = "total_tokens", _parts(raw, "prompt_tokens", "completion_tokens")
        reasoning = _details(raw, "completion_tokens_details", "reasoning_tokens") or 0
        sums = [sum(parts.values()), sum(parts.values()) + reasoning]
    else:  # Responses (Anthropic states no total)
        total_key, parts = "total_tokens", _parts(raw, "input_tokens", "output_tokens")
        sums = [sum(parts.values())]
    total = _int(raw.get(total_key))
    if total is None or not parts or total in sums:
        return None
    stated = " + ".join(f"{key} {value}" for key, value in parts.items())
    return f"the provider's usage does not add up: {stated} = {sums[0]}, but {total_key} is {total}"


def _parts(raw: dict[str, Any], *keys: str) -> dict[str, int]:
    return {key: value for key in keys if (value := _int(raw.get(key))) is not None}
