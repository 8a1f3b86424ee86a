"""Anomalies that need more than one stream to see: checks across the request, the response
headers and the reply, added to the reconstruction's own warnings by `analyzer.frames`.

The reconstruction already warns about what a stream alone shows (truncation, no [DONE],
data after [DONE], non-monotonic `created`, a blank model, mojibake, lenient parsing, errors).
"""

from __future__ import annotations

import re

from analyzer import tokens
from analyzer.model import Exchange, Notice, Reconstruction

# Usage that disagrees with the streamed text this much is flagged (estimate ÷ reported);
# the estimate itself is good to about ±25 % on ordinary text (docs/tokens.md).
MISMATCH_LOW, MISMATCH_HIGH = 0.4, 2.5
MISMATCH_MIN_TOKENS = 50
_DATE_SUFFIX = re.compile(r"[-@](?:\d{4}-?\d{2}-?\d{2}|\d{4}|latest|preview)$")


def _bare(model: str) -> str:
    """A model name without its vendor prefix and date or version suffix, for comparing."""
    name = model.rsplit("/", 1)[-1].lower()
    while (stripped := _DATE_SUFFIX.sub("", name)) != name:
        name = stripped
    return name


def same_model(a: str, b: str) -> bool:
    """Whether two model names name one model (`gpt-4o` and `gpt-4o-2024-08-06`, `openai/gpt-4o`)."""
    return a == b or _bare(a) == _bare(b)


def model_alias(rec: Reconstruction) -> Notice | None:
    """Served under another name than the one asked for (`ds-v3` → `deepseek-v3`); a dated
    snapshot of the requested model (`gpt-4o-mini` → `gpt-4o-mini-2024-07-18`) is not one."""
    asked, served = rec.requested_model, rec.served_model
    if not asked or not served or same_model(asked, served):
        return None
    if rec.has("blank_model"):
        return None  # the served name was filled in from the request: nothing to compare
    return Notice("model_alias", f"asked for {asked!r}, served by {served!r}")


def usage_mismatch(rec: Reconstruction) -> Notice | None:
    """Reported completion tokens far from what the reply's text suggests, judged only where
    the text can tell (the estimate is good to about ±25 % on ordinary text, docs/tokens.md).

    Generated text is content, refusals, tool calls and what the model wrote for server-side
    tools (code, queries). Where the provider counts reasoning apart, the rest is compared
    with that text alone. Where it does not, reasoning text tells nothing either way (Claude 4
    and Responses send summaries of it; Groq's compound models put tool output in it). A reply
    with such reasoning, tool calls (each costs 15-40 tokens of formatting beyond its text:
    Anthropic, Responses), server-side tools or a refusal may have cost far more than it
    shows: there, only a reply far *longer* than its count is flagged. Below MISMATCH_MIN_TOKENS on
    both sides, a tool call's or a short reply's formatting outweighs its text: no verdict."""
    usage = rec.usage
    if usage is None or not usage.completion_tokens or usage.source != "reported":
        return None
    # Reasoning the reply carries in any form: text, a summary, encrypted or redacted blocks.
    shows_reasoning = any(choice.reasoning is not None or choice.reasoning_details for choice in rec.choices)
    # A breakdown of 0 beside reasoning the reply carries is no breakdown (Azure's DeepSeek,
    # Snowflake, OpenAI's encrypted reasoning in Responses).
    apart = usage.reasoning_tokens if usage.reasoning_tokens or not shows_reasoning else None
    reported = usage.completion_tokens - (apart or 0)
    estimated = tokens.generated_estimate(rec)
    if max(reported, estimated) < MISMATCH_MIN_TOKENS:
        return None
    hidden = (
        (shows_reasoning and apart is None)
        or any(choice.tool_calls or choice.refusal or _server_side(choice.extras) for choice in rec.choices)
        or any(key.startswith("server_tool_use") for key in usage.raw)  # OpenRouter's server tools
    )
    ratio = estimated / max(reported, 1)
    if ratio <= MISMATCH_HIGH and (hidden or ratio >= MISMATCH_LOW):
        return None
    besides = " besides reasoning" if apart else ""
    return Notice(
        "usage_mismatch",
        f"{reported} completion tokens reported{besides}, but the generated text looks like ~{estimated}",
    )


# Where a reply says tools ran on the provider's side: every protocol's server tools, Gemini's
# search grounding and URL context, Groq compound's executed tools.
_SERVER_SIDE = ("server_tools", "groundingMetadata", "urlContextMetadata", "executed_tools")


def _server_side(extras: dict[str, object]) -> bool:
    return any(extras.get(key) for key in _SERVER_SIDE)


def rate_limited(exchange: Exchange) -> Notice | None:
    """HTTP 429, with how long the server asked the client to wait."""
    response = exchange.response
    if response is None or response.status != 429:
        return None
    wait = response.header("retry-after") or response.header("retry-after-ms")
    unit = " ms" if response.header("retry-after") is None and wait else (" s" if wait and wait.isdigit() else "")
    return Notice(
        "rate_limited", f"HTTP 429 rate limited; Retry-After: {wait}{unit}" if wait else "HTTP 429 rate limited"
    )


def found(exchange: Exchange, rec: Reconstruction) -> list[Notice]:
    """The cross-cutting anomalies of one exchange (see the module docstring)."""
    notices = [model_alias(rec), usage_mismatch(rec), rate_limited(exchange)]
    return [notice for notice in notices if notice is not None]
