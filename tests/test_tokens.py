"""The token estimate used when a stream reports no usage: exact rules on small texts, and its
accuracy against the providers' own counts on the real corpus (docs/tokens.md)."""

from __future__ import annotations

import statistics
from pathlib import Path

import analyzer
from analyzer.tokens import estimate, prompt_estimate, usage_or_estimate

ROOT = Path(__file__).resolve().parent.parent


def test_rules_by_script() -> None:
    assert estimate("") == 0
    assert estimate("a") == 1  # never zero for some text
    assert estimate("The quick brown fox jumps over it") == 8  # 33 ASCII characters / 4
    assert estimate("你好世界") == 3  # 4 ideographs × 0.8
    assert estimate("Привет мир") == 4  # 9 Cyrillic letters / 2.5 + a space / 4
    assert estimate("🎉🎉") == 3  # 2 astral characters × 1.5


def test_prompt_estimate_counts_each_message_and_the_tools() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
    ]
    assert prompt_estimate(messages) == (4 + 2) + (4 + 1)
    tools = [{"type": "function", "function": {"name": "read_file"}}]
    assert prompt_estimate(messages, tools) > prompt_estimate(messages)


def test_seed_002_without_usage_gets_an_estimate_labelled_as_one() -> None:
    (exchange,) = analyzer.load(ROOT / "captures" / "002_22fabd0d0adae130.txt")
    rec = exchange.reconstruct()
    assert rec.usage is None
    usage = usage_or_estimate(rec, [], None)
    assert usage.source == "estimated" and usage.prompt_tokens is None  # no request: no prompt figure
    assert usage.completion_tokens == estimate(rec.choices[0].content)


def test_reported_usage_is_never_replaced() -> None:
    (exchange,) = analyzer.load(ROOT / "captures" / "000_d638e083d5fc0320.txt")
    rec = exchange.reconstruct()
    assert usage_or_estimate(rec, [{"role": "user", "content": "你好"}], None) is rec.usage


def test_estimate_is_within_a_quarter_of_reported_counts_on_most_real_streams() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_real_corpus import CHAT, reconstruct

    from analyzer.tokens import completion_estimate

    ratios = []
    for path in CHAT:
        rec = reconstruct(path)
        usage = rec.usage
        if not usage or (usage.completion_tokens or 0) < 100:
            continue
        if usage.reasoning_tokens and not any(c.reasoning for c in rec.choices):
            continue  # reasoning the provider counted but did not send
        ratios.append(completion_estimate(rec) / usage.completion_tokens)
    ratios.sort()
    quartiles = statistics.quantiles(ratios, n=4)
    assert len(ratios) >= 15
    assert 0.85 <= statistics.median(ratios) <= 1.2
    assert quartiles[0] >= 0.6 and quartiles[2] <= 1.3


def test_a_request_that_generated_nothing_gets_no_estimate() -> None:
    rate_limited = analyzer.load(ROOT / "captures" / "replayed" / "rate_limited.jsonl")[0]
    rec = rate_limited.reconstruct()
    assert rec.error and not rec.choices
    assert usage_or_estimate(rec, [{"role": "user", "content": "hello there"}], None) is None
