"""One provider quirk per test, each on a hand-written fixture under tests/data/quirks.

The fixtures copy the shape of real recordings (see the corpus INDEX), never their text.
"""

from __future__ import annotations

from pathlib import Path

import analyzer

QUIRKS = Path(__file__).resolve().parent / "data" / "quirks"


def reconstruct(name: str) -> analyzer.Reconstruction:
    return analyzer.load(QUIRKS / name)[0].reconstruct()


def test_azure_prompt_filter_first_chunk_has_no_id_model_or_choices() -> None:
    # Azure OpenAI: the first chunk is choices [], id "", model "", created 0 and prompt_filter_results.
    rec = reconstruct("azure_prompt_filter_first_chunk.sse")
    assert (rec.id, rec.served_model, rec.created) == ("chatcmpl-fx-azure", "gpt-fixture-mini", 1769100000)
    assert rec.extras["prompt_filter_results"][0]["prompt_index"] == 0
    choice = rec.choices[0]
    assert (choice.content, choice.finish_reason) == ("Tea is ready.", "stop")
    # The last results that say something; the finish chunk's empty {} does not erase them.
    assert choice.extras["content_filter_results"]["violence"]["severity"] == "low"
    assert rec.done and not rec.truncated and not rec.warnings


def test_perplexity_cumulative_usage_last_wins_not_summed() -> None:
    # Perplexity: usage is on every chunk and already cumulative.
    rec = reconstruct("perplexity_usage_on_every_chunk.sse")
    assert (rec.usage.prompt_tokens, rec.usage.completion_tokens) == (7, 3)
    assert rec.usage.total_tokens == 10


def test_perplexity_done_object_on_last_chunk() -> None:
    # Perplexity: the last chunk says object "chat.completion.done".
    rec = reconstruct("perplexity_usage_on_every_chunk.sse")
    assert rec.choices[0].content == "Boil water first[1]."
    assert rec.choices[0].finish_reason == "stop"
    assert rec.to_openai()["object"] == "chat.completion"
    assert rec.done and not rec.truncated


def test_perplexity_citations_kept_in_extras() -> None:
    # Perplexity: top-level `citations`, repeated on every chunk.
    rec = reconstruct("perplexity_usage_on_every_chunk.sse")
    assert rec.extras["citations"] == ["https://example.org/kettles", "https://example.net/tea"]


def test_snowflake_blank_envelope_and_no_finish_reason_key() -> None:
    # Snowflake Cortex: id "", created 0, service_tier "", refusal "" and role in every delta,
    # no finish_reason key at all, usage in a choices [] chunk, then [DONE].
    rec = reconstruct("snowflake_blank_envelope_no_finish_reason.sse")
    assert rec.served_model == "claude-fixture"
    assert not rec.id and not rec.created
    choice = rec.choices[0]
    assert (choice.role, choice.content) == ("assistant", "Seven days.")
    assert not choice.refusal
    assert rec.usage.completion_tokens == 3
    assert rec.done and not rec.truncated
    assert not rec.has("truncated") and not rec.has("role_changed")


def test_mistral_content_parts_thinking_is_reasoning() -> None:
    # Mistral (magistral): delta.content is a list of typed parts; `thinking` parts are reasoning.
    choice = reconstruct("mistral_content_parts.sse").choices[0]
    assert choice.reasoning == "Three times three is nine."
    assert choice.content == "It is 9."
    assert choice.finish_reason == "stop"


def test_mistral_whole_tool_call_without_index_or_type() -> None:
    # Mistral: tool calls arrive whole in one delta, with no `index` and no `type`.
    rec = reconstruct("mistral_whole_tool_call_without_index.sse")
    calls = rec.choices[0].tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("Ab3dE5gH7", "tide_table", '{"port": "Brest"}'),
        ("Zy9xW8vU7", "moon_phase", "{}"),
    ]
    assert calls[0].parsed_arguments == {"port": "Brest"}
    message = rec.to_openai()["choices"][0]["message"]
    assert [call["type"] for call in message["tool_calls"]] == ["function", "function"]


def test_mistral_p_padding_does_not_touch_the_answer() -> None:
    # Mistral: a random-length `p` padding string on chunks.
    rec = reconstruct("mistral_p_padding.sse")
    assert rec.choices[0].content == "Salt and pepper."
    assert "p" not in rec.choices[0].extras
    assert not rec.warnings


def test_writer_message_beside_delta_and_null_type_continuations() -> None:
    # Writer (Palmyra): `message` mirrors `delta` in every chunk; continuation tool-call deltas
    # carry id, type and name as null.
    rec = reconstruct("writer_message_beside_delta.sse")
    choice = rec.choices[0]
    assert choice.content == "Checking."
    [call] = choice.tool_calls
    assert (call.id, call.type, call.name) == ("chatcmpl-tool-fx01", "function", "find_train")
    assert call.arguments == '{"from": "Lyon"}'
    assert choice.finish_reason == "tool_calls"


def test_writer_two_interleaved_choices_and_no_done() -> None:
    # Writer (Palmyra): n=2 choices interleave, role in every delta, no [DONE] after the finish.
    rec = reconstruct("writer_two_choices_no_done.sse")
    assert [(c.role, c.content, c.finish_reason) for c in rec.choices] == [
        ("assistant", "Red apples.", "stop"),
        ("assistant", "Blue skies.", "stop"),
    ]
    assert rec.usage.total_tokens == 19
    assert not rec.done and not rec.truncated
    assert rec.has("no_done") and not rec.has("truncated")


def test_openrouter_annotations_in_delta() -> None:
    # OpenRouter (web search): url_citation annotations arrive in deltas, with no index.
    rec = reconstruct("openrouter_annotations_in_delta.sse")
    choice = rec.choices[0]
    assert [a["url_citation"]["url"] for a in choice.annotations] == [
        "https://example.org/owls",
        "https://example.net/birds",
    ]
    assert choice.content == "Owls hunt at night."
    message = rec.to_openai()["choices"][0]["message"]
    assert message["annotations"] == choice.annotations


def test_openrouter_processing_comments() -> None:
    # OpenRouter: `: OPENROUTER PROCESSING` SSE comments before and among the chunks.
    rec = reconstruct("openrouter_processing_comments.sse")
    assert rec.comments == ["OPENROUTER PROCESSING"] * 3
    assert rec.choices[0].content == "Hello there."
    assert not rec.warnings


def test_openrouter_tool_call_resent_whole_in_every_delta() -> None:
    # OpenRouter: the whole tool call (id "0", name) is sent again in every delta.
    [call] = reconstruct("openrouter_tool_call_resent_whole.sse").choices[0].tool_calls
    assert (call.id, call.type, call.name) == ("0", "function", "clock_time")
    assert call.arguments == '{"tz": "UTC"}'


def test_openrouter_reasoning_details_kept_in_order() -> None:
    # OpenRouter: `reasoning` text plus `reasoning_details` (text, summary, encrypted) entries.
    choice = reconstruct("openrouter_reasoning_details.sse").choices[0]
    assert choice.reasoning == "Count the legs."
    assert [d["type"] for d in choice.reasoning_details] == [
        "reasoning.text",
        "reasoning.text",
        "reasoning.summary",
        "reasoning.encrypted",
    ]
    assert choice.reasoning_details[3]["data"] == "ZmFrZS1lbmNyeXB0ZWQ="
    assert choice.content == "A spider has eight legs."


def test_openrouter_error_chunk_with_choices() -> None:
    # OpenRouter: a mid-stream error is a normal chunk carrying `error` and finish_reason "error".
    rec = reconstruct("openrouter_error_chunk.sse")
    assert rec.error == {"code": 502, "message": "Upstream gave up"}
    choice = rec.choices[0]
    assert (choice.content, choice.finish_reason) == ("Once upon", "error")
    assert rec.has("stream_error")


def test_groq_error_payload_mid_reasoning() -> None:
    # Groq (gpt-oss): `{"error": {...}}` as a data payload after some `reasoning` (channel analysis), no [DONE].
    rec = reconstruct("groq_error_mid_reasoning.sse")
    assert rec.choices[0].reasoning == "Need the lookup tool."
    error = rec.error.get("error", rec.error)
    assert error["code"] == "tool_use_failed"
    assert rec.truncated and not rec.done
    assert rec.has("stream_error")


def test_groq_x_groq_usage_kept_in_extras() -> None:
    # Groq: `x_groq` on the first chunk (request id) and the last (request id and usage).
    rec = reconstruct("groq_x_groq_usage.sse")
    assert rec.extras["x_groq"]["id"] == "req_fx0002"
    assert rec.extras["x_groq"]["usage"]["total_tokens"] == 9
    assert rec.choices[0].content == "Quick answer."


def test_groq_compound_chunk_ids_differ() -> None:
    # Groq compound: every chunk has a different id.
    rec = reconstruct("groq_compound_chunk_ids_differ.sse")
    assert rec.has("chunk_ids_differ")
    assert rec.id == "chatcmpl-fx-cmp-a1"
    choice = rec.choices[0]
    assert (choice.reasoning, choice.content) == ("Search first.", "Found it.")
    assert not rec.truncated


def test_qwen_tool_call_continuation_blank_id_and_type_again() -> None:
    # Qwen (Alibaba DashScope compatible mode): continuation tool-call deltas carry id "" and type "function".
    [call] = reconstruct("qwen_tool_call_continuation_blank_id.sse").choices[0].tool_calls
    assert (call.id, call.type, call.name) == ("call_fx0qwen0001", "function", "convert_units")
    assert call.parsed_arguments == {"miles": 26.2}


def test_local_server_created_in_ms() -> None:
    # An unknown local OpenAI-compatible server (localhost:5002) sends `created` in milliseconds.
    rec = reconstruct("localserver_created_in_ms.sse")
    assert rec.choices[0].content == "Ping pong."
    assert rec.done and not rec.truncated
    assert rec.has("created_in_ms")


def test_vllm_stop_reason_and_token_ids_in_extras() -> None:
    # vLLM / Crusoe: `stop_reason` and `token_ids` on choices, `prompt_token_ids` on the chunk.
    rec = reconstruct("vllm_stop_reason_token_ids.sse")
    assert rec.extras["prompt_token_ids"] == [101, 7592, 102]
    choice = rec.choices[0]
    assert choice.extras["stop_reason"] == "<|end|>"
    assert "token_ids" in choice.extras
    assert (choice.content, choice.finish_reason) == ("Yes.", "stop")


def test_openai_moderation_chunk_after_usage_and_obfuscation_padding() -> None:
    # OpenAI (gpt-5): `obfuscation` pads every chunk; after the usage chunk an extra chunk with
    # empty choices and no usage carries the `moderation` result.
    rec = reconstruct("openai_moderation_after_usage.sse")
    assert rec.choices[0].content == "Cross at the lights." and rec.choices[0].finish_reason == "stop"
    assert rec.usage.raw == {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}  # not erased by null
    assert rec.extras["moderation"] == {"flagged": False, "categories": {"violence": False}}
    assert "obfuscation" not in rec.extras and rec.done and not rec.warnings


def test_groq_gpt_oss_reasoning_with_channel_and_usage_on_the_finish_chunk() -> None:
    # Groq serving gpt-oss: reasoning under `reasoning` with the harmony `channel`, and the
    # usage on the same chunk as the finish_reason (not a chunk of its own).
    rec = reconstruct("groq_gptoss_channel_usage_on_finish.sse")
    choice = rec.choices[0]
    assert (choice.reasoning, choice.reasoning_source) == ("User asks for a colour.", "reasoning")
    assert choice.content == "Blue." and choice.extras["channel"] == "final"
    assert (rec.usage.completion_tokens, rec.usage.reasoning_tokens) == (9, 7)
    assert rec.timing is not None and rec.marks["first_answer"] > rec.marks["first_token"]
