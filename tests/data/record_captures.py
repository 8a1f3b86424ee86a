"""Record the bundled sample captures in captures/replayed/ — `make recordings`.

Synthetic conversations (content written for this project) are served by the replay
server with realistic timing, and real clients (the openai SDK, httpx) send them through
a real mitmdump with the chatcap addon; what the addon writes is what gets bundled. So
each file is a genuine capture of a replayed, synthetic exchange. Credentials are
synthetic and redacted by the addon like any others.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import start_proxy, start_upstream  # noqa: E402

from analyzer.model import Exchange, Request, Response  # noqa: E402

OUT = ROOT / "captures" / "replayed"
KEY = "sk-proj-SYNTHETICreplayKEY0000000000000000"
SYSTEM = {"role": "system", "content": "You are a concise assistant for a hiking club."}


def stream(
    messages: list[dict[str, Any]],
    answer: str = "",
    *,
    model: str = "gpt-4o-mini",
    served: str = "gpt-4o-mini-2024-07-18",
    reasoning: str = "",
    tool_calls: list[tuple[str, str, str]] = (),
    choices: int = 1,
    error_after: int | None = None,
    seed: int = 0,
    headers: list[tuple[str, str]] = (),
) -> Exchange:
    """A chat/completions stream with a realistic schedule (TTFT, jittered gaps, one stall)."""
    rng = random.Random(seed)
    envelope = {"id": f"chatcmpl-replay{seed:04d}", "object": "chat.completion.chunk", "created": 1_763_900_000 + seed,
                "model": served, "system_fingerprint": "fp_replay01"}  # fmt: skip

    def pieces(text: str) -> list[str]:
        words = text.split(" ")
        return [w + (" " if n < len(words) - 1 else "") for n, w in enumerate(words)]

    events: list[dict[str, Any]] = []
    for index in range(choices):
        events.append(
            {"choices": [{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        )
    for piece in pieces(reasoning) if reasoning else []:
        events.append({"choices": [{"index": 0, "delta": {"reasoning_content": piece}, "finish_reason": None}]})
    answers = [answer] if choices == 1 else [answer, answer.replace("trail", "path")]
    streams = [pieces(a) for a in answers] if answer else [[] for _ in range(choices)]
    for n in range(max(map(len, streams))):
        for index, words in enumerate(streams):  # n > 1: the choices interleave
            if n < len(words):
                events.append({"choices": [{"index": index, "delta": {"content": words[n]}, "finish_reason": None}]})
    for position, (call_id, name, arguments) in enumerate(tool_calls):
        events.append({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": position, "id": call_id, "type": "function",
                       "function": {"name": name, "arguments": ""}}]}, "finish_reason": None}]})  # fmt: skip
        for start in range(0, len(arguments), 7):
            fragment = {"index": position, "function": {"arguments": arguments[start : start + 7]}}
            events.append({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}]})
    finish = "tool_calls" if tool_calls else "stop"
    for index in range(choices):
        events.append({"choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    words = sum(len(w) for w in streams) + len(pieces(reasoning)) if reasoning else sum(len(w) for w in streams)
    prompt = sum(len(str(m.get("content", "")).split()) for m in messages) * 4 // 3 + 12
    events.append({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": words + 3 * len(tool_calls),
                   "total_tokens": prompt + words + 3 * len(tool_calls),
                   "prompt_tokens_details": {"cached_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": len(pieces(reasoning)) if reasoning else 0}}})  # fmt: skip
    if error_after is not None:
        error = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
        events = [*events[:error_after], error]
    body, chunks, t_ms = b"", [], rng.uniform(280, 650)
    stall_at = rng.randrange(3, max(4, len(events) - 2))
    for n, event in enumerate(events):
        payload = event if "error" in event else {**envelope, **event}
        body += b"data: " + orjson.dumps(payload) + b"\n\n"
        chunks.append((round(t_ms, 3), len(body)))
        t_ms += rng.uniform(1400, 1700) if n == stall_at else rng.uniform(18, 60)
    if error_after is None:
        body += b"data: [DONE]\n\n"
        chunks.append((round(t_ms, 3), len(body)))
    request = Request(
        method="POST", url="/v1/chat/completions", body=orjson.dumps({"model": model, "messages": messages})
    )
    response = Response(
        status=200, reason="OK", headers=[("content-type", "text/event-stream"), *headers], body=body, chunks=chunks
    )
    return Exchange(
        id=f"source#{seed}", source="record_captures", format="replay-source", request=request, response=response
    )


def rate_limited(messages: list[dict[str, Any]], model: str) -> Exchange:
    body = orjson.dumps({"error": {"message": "Rate limit reached for requests per minute. Please retry in 20s.",
                                   "type": "requests", "code": "rate_limit_exceeded"}})  # fmt: skip
    headers = [("content-type", "application/json"), ("retry-after", "20"), ("x-ratelimit-remaining-requests", "0")]
    request = Request(
        method="POST", url="/v1/chat/completions", body=orjson.dumps({"model": model, "messages": messages})
    )
    response = Response(status=429, reason="Too Many Requests", headers=headers, body=body, chunks=[(212.0, len(body))])
    return Exchange(
        id="source#429", source="record_captures", format="replay-source", request=request, response=response
    )


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def conversation() -> tuple[list[Exchange], list[list[dict[str, Any]]]]:
    """Five turns, history resent each turn, the third reply regenerated, the fourth question edited."""
    q = [
        "Which trail is best for a beginner in late autumn?",
        "How long does the Lakeside Loop take?",
        "What should I pack?",
        "Is it safe after dark?",
        "Is it safe with a dog?",  # the edited version of the fourth question
        "Thanks! Any café near the trailhead?",
    ]
    a = [
        "The Lakeside Loop: 6 km, mostly flat, well marked, and it stays passable after light rain.",
        "About two hours at an easy pace, plus breaks; allow 2.5 hours in late autumn when the light goes early.",
        "Layers, a rain shell, 1 litre of water, a snack, a headlamp and shoes with grip for wet roots.",
        "Bring: warm layers, water, snacks, a headlamp, a charged phone and grippy shoes — the trail can be muddy.",
        "It is not lit; stay on the main loop with a headlamp and tell someone your plan.",
        "Yes, on a leash: the loop passes a nesting area where dogs must be leashed from March to July.",
        "Yes — Café Birke by the car park serves soup and cake until 17:00.",
    ]
    h1 = [SYSTEM, user(q[0])]
    h2 = [*h1, assistant(a[0]), user(q[1])]
    h3 = [*h2, assistant(a[1]), user(q[2])]
    h4_dark = [*h3, assistant(a[3]), user(q[3])]  # the regenerated reply (a[3]) is the one kept
    h4_dog = [*h3, assistant(a[3]), user(q[4])]  # the fourth question, edited
    h5 = [*h4_dog, assistant(a[5]), user(q[5])]
    sources = [
        stream(h1, a[0], seed=1), stream(h2, a[1], seed=2), stream(h3, a[2], seed=3), stream(h3, a[3], seed=4),
        stream(h4_dark, a[4], seed=5), stream(h4_dog, a[5], seed=6), stream(h5, a[6], seed=7),
    ]  # fmt: skip
    requests = [h1, h2, h3, h3, h4_dark, h4_dog, h5]
    return sources, requests


def record(name: str, sources: list[Exchange], drive: Any, note: str) -> None:
    server = start_upstream(sources)
    with tempfile.TemporaryDirectory() as scratch:
        proxy = start_proxy(Path(scratch))
        try:
            drive(server.url, proxy.url)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and sum(1 for f in proxy.out.glob("*.jsonl") for _ in f.open()) < len(
                sources
            ):
                time.sleep(0.1)
        finally:
            proxy.stop()
            server.shutdown()
            server.server_close()
        (recorded,) = proxy.out.glob("*.jsonl")
        shutil.copy(recorded, OUT / f"{name}.jsonl")
    print(f"captures/replayed/{name}.jsonl: {note}")


def sdk(upstream: str, proxy: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream}/v1", api_key=KEY, http_client=httpx.Client(proxy=proxy), max_retries=0)


def chat(client: openai.OpenAI, messages: list[dict[str, Any]], model: str = "gpt-4o-mini", **options: Any) -> str:
    text = []
    for chunk in client.chat.completions.create(model=model, messages=messages, stream=True,
                                                stream_options={"include_usage": True}, **options):  # fmt: skip
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    return "".join(text)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sources, requests = conversation()
    record("conversation", sources, lambda up, px: [chat(sdk(up, px), m) for m in requests],
           "a five-turn chat: history resent, the third reply regenerated, the fourth question edited")  # fmt: skip

    ask = [SYSTEM, user("What's the weather at the Lakeside Loop trailhead tomorrow morning?")]
    call = ("call_replay_w1", "get_forecast", '{"place": "Lakeside Loop trailhead", "when": "tomorrow 08:00"}')
    answer = [*ask, {"role": "assistant", "content": None, "tool_calls": [
        {"id": call[0], "type": "function", "function": {"name": call[1], "arguments": call[2]}}]},
        {"role": "tool", "tool_call_id": call[0], "content": '{"temp_c": 4, "rain_mm": 0.2, "wind_kmh": 12}'}]  # fmt: skip
    reasoning_sources = [
        stream(ask, model="deepseek-reasoner", served="deepseek-reasoner", seed=11, tool_calls=[call],
               reasoning="The user wants tomorrow's weather at a specific place. I should call the forecast tool with the place and time."),
        stream(answer, "Tomorrow at 08:00: about 4 °C, light drizzle (0.2 mm) and a gentle breeze — bring a shell.",
               model="deepseek-reasoner", served="deepseek-reasoner", seed=12,
               reasoning="The tool says 4 °C, 0.2 mm rain, 12 km/h wind. Summarise briefly."),
    ]  # fmt: skip
    tools = [{"type": "function", "function": {"name": "get_forecast", "parameters": {"type": "object",
              "properties": {"place": {"type": "string"}, "when": {"type": "string"}}}}}]  # fmt: skip
    record("reasoning_tool_call", reasoning_sources,
           lambda up, px: [chat(sdk(up, px), m, model="deepseek-reasoner", tools=tools) for m in (ask, answer)],
           "a reasoning model calls a tool; the next request carries the tool result")  # fmt: skip

    gz = [user("Summarise the club's winter schedule in one sentence.")]
    record("gzip_stream", [stream(gz, "Winter hikes run every second Saturday from December to February, leaving at 09:00.",
                                  seed=21, headers=[("content-encoding", "gzip")])],
           lambda up, px: chat(sdk(up, px), gz), "a gzip-compressed stream (recorded decoded)")  # fmt: skip

    limited = [user("Plan a route for 40 people.")]

    def hit_limit(up: str, px: str) -> None:
        with contextlib.suppress(openai.RateLimitError):
            chat(sdk(up, px), limited)

    record("rate_limited", [rate_limited(limited, "gpt-4o-mini")], hit_limit, "HTTP 429 with Retry-After")

    aborted = [user("Write a long history of the hiking club.")]
    long_answer = " ".join(
        f"In {1950 + n} the club added a new route and held its {n + 1}th annual walk." for n in range(25)
    )

    def abort(up: str, px: str) -> None:
        with httpx.Client(proxy=px) as client, client.stream(
            "POST", f"{up}/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
            json={"model": "gpt-4o-mini", "messages": aborted, "stream": True},
        ) as response:  # fmt: skip
            for n, _ in enumerate(response.iter_lines()):
                if n >= 40:
                    break  # the user pressed stop

    record("client_abort", [stream(aborted, long_answer, seed=31)], abort, "the client stopped the stream midway")

    pair = [user("Suggest a name for our new trail.")]
    record("two_choices", [stream(pair, "Call it the Birch trail, after the trees along it.", choices=2, seed=41)],
           lambda up, px: chat(sdk(up, px), pair, n=2), "n=2: two choices, their chunks interleaved")  # fmt: skip

    broken = [user("List the club's rules.")]
    record("error_mid_stream", [stream(broken, "Rule one: leave no trace. Rule two: stay together.", seed=51, error_after=9)],
           lambda up, px: _ignore_errors(lambda: chat(sdk(up, px), broken)), "an error object arrives mid-stream")  # fmt: skip


def _ignore_errors(run: Any) -> None:
    with contextlib.suppress(openai.APIError):  # the SDK raises on an in-band error; the capture keeps what came first
        run()


if __name__ == "__main__":
    main()
