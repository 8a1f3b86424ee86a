"""Usage in each protocol's documented shape, folded into OpenAI's meaning of each figure."""

from __future__ import annotations

from analyzer.usage import normalise


def figures(raw: dict) -> tuple:
    u = normalise(raw)
    return u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_prompt_tokens, u.reasoning_tokens


def test_openai_chat_with_details_and_deepseek_cache_fields() -> None:
    raw = {
        "prompt_tokens": 665,
        "completion_tokens": 90,
        "total_tokens": 755,
        "prompt_tokens_details": {"cached_tokens": 384},
        "completion_tokens_details": {"reasoning_tokens": 86},
    }
    assert figures(raw) == (665, 90, 755, 384, 86)
    assert figures({"prompt_tokens": 10, "completion_tokens": 2, "prompt_cache_hit_tokens": 8}) == (
        10,
        2,
        None,
        8,
        None,
    )


def test_responses_api_counts_cached_and_reasoning_inside_the_totals() -> None:
    raw = {
        "input_tokens": 328,
        "input_tokens_details": {"cached_tokens": 256},
        "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 32},
        "total_tokens": 380,
    }
    assert figures(raw) == (328, 52, 380, 256, 32)


def test_anthropic_input_tokens_leave_the_cache_out_so_they_are_added_back() -> None:
    raw = {
        "input_tokens": 21,
        "cache_creation_input_tokens": 188,
        "cache_read_input_tokens": 1024,
        "output_tokens": 393,
    }
    usage = normalise(raw)
    assert figures(raw) == (21 + 188 + 1024, 393, 21 + 188 + 1024 + 393, 1024, None)
    assert usage.cache_write_tokens == 188 and usage.raw is raw


def test_gemini_thoughts_are_counted_apart_by_gemini_and_folded_into_completion() -> None:
    raw = {
        "promptTokenCount": 12,
        "candidatesTokenCount": 40,
        "thoughtsTokenCount": 300,
        "totalTokenCount": 352,
        "cachedContentTokenCount": 8,
    }
    assert figures(raw) == (12, 340, 352, 8, 300)


def test_odd_values_are_not_figures() -> None:
    assert figures({"prompt_tokens": True, "completion_tokens": "12", "total_tokens": 3.5}) == (
        None,
        None,
        None,
        None,
        None,
    )


# -- real recordings: what providers state, checked against itself -------------------------

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from bundled import REAL_CORPUS as CORPUS  # noqa: E402
from bundled import captures_as_cloned  # noqa: E402

import analyzer  # noqa: E402
from analyzer.anomalies import usage_mismatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _recorded(name: str) -> analyzer.Exchange:
    [exchange] = analyzer.load(CORPUS / name)
    return exchange


def _all_recorded() -> list[analyzer.Exchange]:
    files = [*sorted(CORPUS.glob("*.sse")), captures_as_cloned(), ROOT / "tests" / "data" / "protocols"]
    return list(analyzer.load(files, progress=False))


def test_gemini_tool_use_prompt_tokens_count_as_prompt() -> None:
    """Code execution fed 360 tokens of tool output back to the model: prompt, and billed so."""
    usage = _recorded("google__gemini__code-execution.sse").reconstruct().usage
    assert usage is not None and usage.raw["toolUsePromptTokenCount"] == 360
    assert usage.prompt_tokens == 147 + 360
    assert usage.prompt_tokens + usage.completion_tokens == usage.total_tokens == 783


def test_xai_reasoning_left_out_of_completion_tokens_is_added_back() -> None:
    """xAI's completion_tokens (1) leaves out the 290 reasoning tokens its total (303) counts."""
    usage = _recorded("xai__openai_chat__text.sse").reconstruct().usage
    assert usage is not None and usage.raw["completion_tokens"] == 1
    assert (usage.completion_tokens, usage.reasoning_tokens, usage.total_tokens) == (291, 290, 303)


def test_every_real_recording_states_usage_that_adds_up() -> None:
    warned = [x.id for x in _all_recorded() if x.reconstruct().has("usage_identity")]
    assert warned == []


@pytest.mark.parametrize(
    ("name", "total_key"),
    [
        ("openai__openai_chat__gpt41nano-text.sse", "total_tokens"),
        ("google__gemini__code-execution.sse", "totalTokenCount"),
        ("openai__openai_responses__moderation.sse", "total_tokens"),
    ],
)
def test_usage_whose_parts_do_not_add_up_is_a_warning(name: str, total_key: str, tmp_path: Path) -> None:
    body = (CORPUS / name).read_bytes()
    altered = re.sub(rf'("{total_key}":\s*)(\d+)', lambda m: m.group(1) + str(int(m.group(2)) + 1000).encode().decode(),
                     body.decode())  # fmt: skip
    assert altered != body.decode()
    [exchange] = analyzer.parse(altered, name)
    warnings = [w.message for w in exchange.reconstruct().warnings if w.code == "usage_identity"]
    assert len(warnings) == 1 and total_key in warnings[0]


# Real recordings whose usage really disagrees with the text they hold.
TRUE_MISMATCHES = {
    # vercel/ai's fixtures keep 8 chunks of a 434- and a 336-token answer (and its final usage).
    "perplexity__openai_chat__sonar-text.sse#1",
    "perplexity__openai_chat__sonar-citations.sse#1",
    # A local mock server (openllmetry's cassette) that reports 50 tokens for any answer.
    "localmock__openai_chat__local5002-repeated-role.sse#1",
}


def test_usage_mismatch_raises_no_false_alarm_on_real_recordings() -> None:
    """Tool-call-only turns, server tools, code execution, reasoning sent as a summary or
    encrypted, reasoning counted apart or with a breakdown of 0: none is an alarm."""
    flagged = {x.id for x in _all_recorded() if usage_mismatch(x.reconstruct())}
    assert flagged == TRUE_MISMATCHES


@pytest.mark.parametrize(
    ("name", "factor", "fires"),
    [
        ("openai__openai_chat__gpt41nano-text.sse", 0.1, True),
        ("openai__openai_chat__gpt41nano-text.sse", 10, True),
        ("anthropic__anthropic_messages__thinking.sse", 0.1, True),
        # Thinking without a breakdown may have been sent as a summary: a count far above the
        # text is what such a reply looks like, and the text cannot tell.
        ("anthropic__anthropic_messages__thinking.sse", 10, False),
    ],
)
def test_usage_mismatch_fires_when_the_count_really_disagrees(name: str, factor: float, fires: bool) -> None:
    """The same real stream with its completion count scaled: 10x too many, or too few."""
    key = "completion_tokens" if "openai_chat" in name else "output_tokens"
    text = (CORPUS / name).read_text()
    altered = re.sub(rf'("{key}":\s*)(\d+)', lambda m: m.group(1) + str(max(1, round(int(m.group(2)) * factor))), text)
    assert altered != text
    [exchange] = analyzer.parse(altered, name)
    assert usage_mismatch(_recorded(name).reconstruct()) is None
    assert (usage_mismatch(exchange.reconstruct()) is not None) is fires
