"""Provider quirks, one fixture each under tests/data/quirks (shapes written by hand)."""

from __future__ import annotations

from pathlib import Path

import analyzer

QUIRKS = Path(__file__).resolve().parent / "data" / "quirks"


def reconstruct(name: str) -> analyzer.Reconstruction:
    return analyzer.load(QUIRKS / name)[0].reconstruct()


def test_together_text_beside_delta_is_not_doubled() -> None:
    # Together (DeepSeek-R1 behind the HF router) repeats each token in a legacy `text` field.
    rec = reconstruct("together_text_beside_delta.sse")
    assert rec.choices[0].content == "<think>Hmm.</think>Look both ways."
    assert rec.choices[0].finish_reason == "stop"


def test_think_block_in_content_is_split_out_and_content_kept_as_streamed() -> None:
    # DeepSeek-R1 behind Together / the Hugging Face router reasons inside <think> in content.
    choice = reconstruct("together_text_beside_delta.sse").choices[0]
    assert (choice.think, choice.answer) == ("Hmm.", "Look both ways.")
    assert choice.content == "<think>Hmm.</think>Look both ways."  # to_openai() keeps it as streamed
    assert choice.reasoning is None  # no provider reasoning field: the split is labelled separately


def test_transcript_shows_a_think_block_as_labelled_reasoning() -> None:
    exchange = analyzer.load(QUIRKS / "together_text_beside_delta.sse")[0]
    text = analyzer.export.markdown_text(exchange)
    assert "<summary>Reasoning (from &lt;think&gt; in the content)</summary>" in text
    assert "\nLook both ways.\n" in text and "<think>Hmm." not in text
