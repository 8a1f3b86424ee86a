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
