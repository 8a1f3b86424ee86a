"""Write `captures/branching_conversation.jsonl`: conversations that branch (schema `chatcap/1`).

Ten synthetic exchanges, in the order they started, from two clients that resend the whole
history every turn (what `analyzer.threads` groups again):

    line  conversation  what
    1     baking        turn 1
    2     travel        turn 1: a reasoning model calls a tool
    3     baking        turn 2
    4     travel        the tool result goes back (the call resent with its reasoning_content); the answer
    5     baking        turn 2 regenerated: the same request, another answer
    6     baking        turn 2's question edited: the same history before it, another question
    7     travel        turn 2: the client resent line 4's reasoning and answer joined as the content
    8     baking        turn 3 on the edited branch, the history re-serialised (user content as
                        parts, a trailing newline on a reply)
    9     baking        a new chat with the same system prompt and another first question
    10    baking        turn 4: the user had edited line 8's reply in the app, cutting its tip

Everything in it was made up for chatcap's tests: prompts, answers, ids, credentials
(stored already redacted) and timing (multiples of 1/8 ms, so every sum is exact). The
building blocks are tests/data/make_captures.py's.

Run from the repository root: `python tests/data/make_conversation_captures.py [OUT_DIR]`
(default `captures/`). The output is deterministic; review the diff after changing this file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_captures as base

OUT = base.OUT
NAME = "branching_conversation.jsonl"
COMMENT = "synthetic exchange written by tests/data/make_conversation_captures.py for chatcap's tests; not real traffic"

STARTED = (
    "2025-09-17T09:14:03.250Z",
    "2025-09-17T09:14:21.875Z",
    "2025-09-17T09:14:40.125Z",
    "2025-09-17T09:14:52.500Z",
    "2025-09-17T09:15:12.375Z",
    "2025-09-17T09:15:47.000Z",
    "2025-09-17T09:16:05.625Z",
    "2025-09-17T09:16:30.750Z",
    "2025-09-17T09:17:02.125Z",
    "2025-09-17T09:17:44.500Z",
)
IDS = (
    "chatcmpl-CHsynthetic0branch0chatcap01",
    "chatcmpl-5b1e7c2a9d4f4e6b8a3c0d9e8f7a6b02",
    "chatcmpl-CHsynthetic0branch0chatcap03",
    "chatcmpl-8c2f0d3b1e5a4f7c9b4d1e0f9a8b7c04",
    "chatcmpl-CHsynthetic0branch0chatcap05",
    "chatcmpl-CHsynthetic0branch0chatcap06",
    "chatcmpl-9d3a1e4c2f6b4a8d0c5e2f1a0b9c8d07",
    "chatcmpl-CHsynthetic0branch0chatcap08",
    "chatcmpl-CHsynthetic0branch0chatcap09",
    "chatcmpl-CHsynthetic0branch0chatcap10",
)

# -- the baking conversation: a chat app's backend, gpt-4o-mini on api.openai.com ----------------

BAKING_SYSTEM = "You are a friendly baking assistant. (Synthetic conversation for chatcap's tests.)"
Q1 = "How long should I proof a sourdough loaf?"
R1 = (
    "Synthetic answer: bulk-ferment at about 24 °C for 4–6 hours, until the dough has grown by half, "
    "then proof the shaped loaf for 1–2 hours — or overnight in the fridge."
)
Q2 = "Can I speed that up?"
R2 = (
    "Synthetic answer: yes — a warmer spot (26–28 °C) and 25 % starter instead of 20 % shorten "
    "the bulk ferment by an hour or two."
)
R2_REGENERATED = "Synthetic answer: warmth helps most: at 27 °C the bulk ferment can finish in about 3½ hours."
Q2_EDITED = "Can I slow it down instead, so it fits around work?"
R2_EDITED = (
    "Synthetic answer: yes — use cooler water, 10 % starter instead of 20 %, and retard the shaped "
    "loaf in the fridge for 12–16 hours."
)
Q3 = "What temperature should the fridge be?"
R3_FIRST = (
    "Synthetic answer: 3–5 °C. A colder fridge slows the proof so much that the loaf may need an "
    "hour at room temperature before baking."
)
R3 = R3_FIRST + "\n\nTip: press the dough with a floured finger; a dent that springs back slowly means it is ready."
Q4 = "And how long should it bake?"
R4 = "Synthetic answer: 20 minutes at 250 °C with steam, then 20–25 minutes at 230 °C without, until it is deep brown."
Q_NEW_CHAT = "Which flour is best for baguettes?"
R_NEW_CHAT = "Synthetic answer: a French T65, or an all-purpose flour with about 11.5 % protein."
OPENAI_GAPS = (23.5, 31.25, 19.75, 27.0, 35.5, 21.125)

# -- the travel conversation: an agent, Qwen3 with reasoning and a tool on a local vLLM ------------

TRAVEL_SYSTEM = "You are a travel assistant with a weather tool. (Synthetic conversation for chatcap's tests.)"
TRAVEL_Q1 = "Should I pack an umbrella for Lisbon tomorrow?"
TRAVEL_REASONING_1 = (
    "The user wants to know whether to pack an umbrella for Lisbon tomorrow. "
    "I should look up the forecast with get_forecast."
)
TOOL_CALL_ID = "chatcmpl-tool-3e8d1c6b0a9f4e2d8c7b6a5f4e3d2c19"
TOOL_ARGUMENTS = ['{"', "city", '":', ' "', "Lis", "bon", '",', ' "', "day", '":', ' "', "tom", "orrow", '"}']
TOOL_RESULT = {"city": "Lisbon", "day": "tomorrow", "rain_probability": 0.7, "high_c": 17}
TRAVEL_REASONING_2 = "The forecast gives a 70 % chance of rain and a high of 17 °C, so an umbrella is worth packing."
TRAVEL_ANSWER_2 = (
    "Synthetic answer: yes — Lisbon has a 70 % chance of rain tomorrow and a high of 17 °C. Pack a compact umbrella."
)
TRAVEL_Q2 = "What about a jacket?"
TRAVEL_REASONING_3 = "The user asks about a jacket. At 17 °C with rain, a light waterproof layer is enough."
TRAVEL_ANSWER_3 = "Synthetic answer: a light rain jacket will do; 17 °C is mild, so leave the warm coat at home."
FORECAST_TOOL = {
    "type": "function",
    "function": {
        "name": "get_forecast",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "day": {"type": "string"}},
            "required": ["city"],
        },
    },
}


# -- building blocks -----------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    """`text` as a model streams it: a word with the space before it."""
    pieces = re.findall(r"\s*\S+", text)
    assert "".join(pieces) == text
    return pieces


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A plausible prompt size: 4 characters a token, 7 tokens of framing a message."""
    size = 0
    for message in messages:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"text": content or ""}]
        size += sum(len(part["text"]) for part in parts) // 4 + 7
        size += sum(len(call["function"]["arguments"]) // 4 + 5 for call in message.get("tool_calls", []))
    return size


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def baking(line: int, messages: list[dict[str, Any]], answer: str, *, wait: float) -> dict[str, Any]:
    """A gpt-4o-mini stream: role chunk, a word a chunk, finish, the usage chunk, [DONE]."""
    started, chunk_id = STARTED[line - 1], IDS[line - 1]
    created = base.epoch(started)

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> str:
        return base.event({
            "id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": "gpt-4o-mini-2024-07-18",
            "service_tier": "default", "system_fingerprint": "fp_560af6e559", "choices": choices, "usage": usage,
        })  # fmt: skip

    words = tokens(answer)
    usage = {
        "prompt_tokens": estimate_tokens(messages),
        "completion_tokens": len(words) + 2,
        "total_tokens": estimate_tokens(messages) + len(words) + 2,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    first = wait + 0.5 + 6.375
    body = base.Body()
    role = {"role": "assistant", "content": "", "refusal": None}
    body.read(first, chunk([{"index": 0, "delta": role, "logprobs": None, "finish_reason": None}]))
    times = base.cadence(first + 18.25, len(words), OPENAI_GAPS)
    for t_ms, word in zip(times, words, strict=True):
        body.read(t_ms, chunk([{"index": 0, "delta": {"content": word}, "logprobs": None, "finish_reason": None}]))
    body.read(times[-1] + 24.625, chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]))
    body.read(times[-1] + 27.0, chunk([], usage) + base.DONE)
    request = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return base.entry(
        started=started,
        url="https://api.openai.com/v1/chat/completions",
        http_version="HTTP/2.0",
        request_headers=base.openai_sdk_headers("api.openai.com", base.OPENAI_KEY, asynchronous=True),
        request_body=request,
        status=200,
        reason="",
        response_headers=base.openai_response_headers(
            "Wed, 17 Sep 2025 " + started[11:19] + " GMT",
            "text/event-stream; charset=utf-8",
            f"req_5ynth371cbr{line:02d}",
            f"98a0b1c2d3e4f5{line:02d}",
        ),
        body=body,
        send=0.5,
        wait=wait,
    )


def travel(
    line: int,
    messages: list[dict[str, Any]],
    reasoning: str,
    *,
    answer: str | None = None,
    wait: float,
) -> dict[str, Any]:
    """A Qwen3 stream from vLLM: reasoning_content, then the answer or the get_forecast call."""
    started, chunk_id = STARTED[line - 1], IDS[line - 1]
    created = base.epoch(started)
    body = base.Body()
    body.read(wait + 4.25, base.vllm_delta(chunk_id, created, {"role": "assistant", "content": ""}))
    thinking = tokens(reasoning)
    times = base.cadence(wait + 152.5, len(thinking), base.LOCAL_GAPS)
    for t_ms, word in zip(times, thinking, strict=True):
        body.read(t_ms, base.vllm_delta(chunk_id, created, {"reasoning_content": word}))
    last = times[-1]
    if answer is None:
        header = {"index": 0, "id": TOOL_CALL_ID, "type": "function", "function": {"name": "get_forecast"}}
        body.read(last + 187.75, base.vllm_delta(chunk_id, created, {"tool_calls": [header]}))
        times = base.cadence(last + 207.0, len(TOOL_ARGUMENTS), base.LOCAL_GAPS)
        for t_ms, piece in zip(times, TOOL_ARGUMENTS, strict=True):
            fragment = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
            body.read(t_ms, base.vllm_delta(chunk_id, created, fragment))
        completion, finish = len(thinking) + len(TOOL_ARGUMENTS) + 9, "tool_calls"
    else:
        words = tokens(answer)
        times = base.cadence(last + 44.375, len(words), base.LOCAL_GAPS)
        for t_ms, word in zip(times, words, strict=True):
            body.read(t_ms, base.vllm_delta(chunk_id, created, {"content": word}))
        completion, finish = len(thinking) + len(words) + 3, "stop"
    body.read(times[-1] + 2.25, base.vllm_finish(chunk_id, created, finish))
    prompt = estimate_tokens(messages) + 160  # the tool definition
    usage = {"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion, "prompt_tokens_details": None}  # fmt: skip
    body.read(times[-1] + 4.5, base.vllm_chunk(chunk_id, created, [], usage) + base.DONE)
    request = {
        "model": base.TOOLS_MODEL,
        "messages": messages,
        "tools": [FORECAST_TOOL],
        "tool_choice": "auto",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    return base.entry(
        started=started,
        url="http://localhost:8000/v1/chat/completions",
        http_version="HTTP/1.1",
        request_headers=base.openai_sdk_headers("localhost:8000", base.VLLM_KEY, asynchronous=True),
        request_body=request,
        status=200,
        reason="OK",
        response_headers=base.vllm_headers("Wed, 17 Sep 2025 " + started[11:19] + " GMT"),
        body=body,
        send=0.375,
        wait=wait,
    )


# -- the file ------------------------------------------------------------------------------


def branching_conversation() -> list[dict[str, Any]]:
    turn_1 = [{"role": "system", "content": BAKING_SYSTEM}, user(Q1)]
    travel_1 = [{"role": "system", "content": TRAVEL_SYSTEM}, user(TRAVEL_Q1)]
    # The agent resends the call with its arguments compactly re-serialised, and the reasoning
    # that led to it in `reasoning_content`.
    arguments = base.compact({"city": "Lisbon", "day": "tomorrow"})
    assert arguments != "".join(TOOL_ARGUMENTS)
    call = {"id": TOOL_CALL_ID, "type": "function", "function": {"name": "get_forecast", "arguments": arguments}}
    tool_round = [
        *travel_1,
        {"role": "assistant", "content": None, "reasoning_content": TRAVEL_REASONING_1, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": base.compact(TOOL_RESULT)},
    ]
    # The client joined line 4's reasoning and answer into the content it resends.
    travel_2 = [*tool_round, assistant(TRAVEL_REASONING_2 + TRAVEL_ANSWER_2), user(TRAVEL_Q2)]
    turn_2 = [*turn_1, assistant(R1), user(Q2)]
    edited = [*turn_1, assistant(R1), user(Q2_EDITED)]

    def parts(text: str) -> list[dict[str, str]]:
        return [{"type": "text", "text": text}]

    # The app re-serialises the edited branch: user content as parts, a newline after one reply.
    turn_3 = [
        {"role": "system", "content": BAKING_SYSTEM},
        {"role": "user", "content": parts(Q1)},
        {"role": "assistant", "content": R1 + "\n"},
        {"role": "user", "content": parts(Q2_EDITED)},
        {"role": "assistant", "content": R2_EDITED},
        {"role": "user", "content": parts(Q3)},
    ]
    turn_4 = [*turn_1, assistant(R1), user(Q2_EDITED), assistant(R2_EDITED), user(Q3), assistant(R3_FIRST), user(Q4)]
    lines = [
        baking(1, turn_1, R1, wait=412.25),
        travel(2, travel_1, TRAVEL_REASONING_1, wait=97.5),
        baking(3, turn_2, R2, wait=388.75),
        travel(4, tool_round, TRAVEL_REASONING_2, answer=TRAVEL_ANSWER_2, wait=91.25),
        baking(5, turn_2, R2_REGENERATED, wait=401.5),
        baking(6, edited, R2_EDITED, wait=376.125),
        travel(7, travel_2, TRAVEL_REASONING_3, answer=TRAVEL_ANSWER_3, wait=104.0),
        baking(8, turn_3, R3, wait=429.875),
        baking(9, [{"role": "system", "content": BAKING_SYSTEM}, user(Q_NEW_CHAT)], R_NEW_CHAT, wait=366.5),
        baking(10, turn_4, R4, wait=395.0),
    ]
    for line in lines:
        line["comment"] = COMMENT
    return lines


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = "".join(base.compact(line) + "\n" for line in branching_conversation())
    (out / NAME).write_text(text, encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
