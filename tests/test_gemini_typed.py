"""Gemini's fast path (`gemini._typed_events`, `_Fold.add_typed`): a whole `alt=sse`
stream decoded typed in one call and folded by attribute gives exactly what the general
path (the SSE decoder, a dict per event, `_Fold.add`) gives.

The proof is differential: every stream is reconstructed twice, `events.WHOLE_STREAM` on
and off, and the two reconstructions must agree on everything a user can read (the native
object, the chat shape, every chunk's payload as plain JSON, its arrival time, the marks,
the warnings), numbers compared with their JSON types (an integer must not come back as a
float). The streams are `gemini_streamgen`'s (Gemini API and Vertex AI, CRLF and LF, one
or two candidates, thoughts, signatures, whole and streamed function calls, code
execution, safety ratings), whole and cut into random network reads, and the same streams
with every field beyond the common ones taken out, so that both sets of types are taken.
"""

from __future__ import annotations

import json
import random
from typing import Any

import gemini_streamgen as gen
import pytest
import streamgen
from bundled import REAL_CORPUS as CORPUS

from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols import events, gemini
from analyzer.protocols.events import payload_of

STREAM_URL = gen.GEMINI_URL + "?alt=sse"
VERTEX_STREAM_URL = gen.VERTEX_URL + "?alt=sse"


def exchange(body: bytes, url: str = STREAM_URL, reads: list[tuple[float, int]] | None = None) -> Exchange:
    return Exchange(
        id="gemini#typed",
        source="<test_gemini_typed>",
        format="sse-text",
        request=Request(method="POST", url=url),
        response=Response(status=200, headers=[("content-type", "text/event-stream")], body=body, chunks=reads),
    )


def exact(value: Any) -> str:
    """`value` as JSON with sorted keys: equal only if every number has the same JSON type."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def snapshot(rec: Reconstruction) -> dict[str, Any]:
    return {
        "native": exact(rec.to_native()),
        "openai": exact(rec.to_openai()),
        "chunks": [(chunk.seq, chunk.t_ms, chunk.created, chunk.extras) for chunk in rec.chunks],
        "payloads": [exact(payload_of(chunk.payload)) for chunk in rec.chunks],
        "marks": rec.marks,
        "warnings": [(notice.code, notice.message) for notice in rec.warnings],
        "ending": (rec.done, rec.truncated, rec.error),
        "usage": rec.usage,
        "envelope": (rec.id, rec.served_model, rec.created, rec.object, rec.extras, rec.comments),
        "choices": [(choice.finish_reason, choice.extras, choice.reasoning_details) for choice in rec.choices],
    }


def both_paths(make: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Reconstruction, Reconstruction]:
    """The reconstruction of a fresh `make()` on the fast path, and on the general one."""
    fast = make().reconstruct()
    with monkeypatch.context() as patched:
        patched.setattr(events, "WHOLE_STREAM", False)
        general = make().reconstruct()
    return fast, general


def payload_types(rec: Reconstruction) -> set[type]:
    return {type(chunk.payload) for chunk in rec.chunks}


def common_only(stream_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without what only the `Full…` types know: safety ratings, and code
    execution parts (those events keep their other parts)."""
    out = []
    for event in stream_events:
        candidates = []
        for candidate in event["candidates"]:
            candidate = {key: value for key, value in candidate.items() if key != "safetyRatings"}
            if "content" in candidate:
                parts = [p for p in candidate["content"]["parts"] if "executableCode" not in p and "codeExecutionResult" not in p]  # fmt: skip
                candidate["content"] = {**candidate["content"], "parts": parts}
            candidates.append(candidate)
        out.append({**event, "candidates": candidates})
    return out


def random_reads(body: bytes, rng: random.Random) -> list[tuple[float, int]]:
    """Network reads cut anywhere; sometimes the last bytes were never timed."""
    reads = streamgen.network_reads(body, streamgen.split_points(body, rng), rng)
    return reads[:-1] if len(reads) > 1 and rng.random() < 0.2 else reads


# -- the typed path is the one taken -------------------------------------------------------------


def test_common_stream_decodes_into_the_common_types() -> None:
    stream = gen.generate(7, variant="complete", framing="sse-crlf")
    body = gen.frame(common_only(stream.events), "sse-crlf", random.Random(7)).body
    rec = exchange(body, stream.url).reconstruct()
    assert payload_types(rec) == {gemini.GenerateContentResponse}
    assert [payload_of(chunk.payload) for chunk in rec.chunks] == common_only(stream.events)


def test_safety_ratings_and_code_execution_decode_into_the_full_types() -> None:
    seeds = [seed for seed in range(60) if "executableCode" in json.dumps(gen.generate(seed).events)]
    stream = gen.generate(seeds[0], variant="complete", framing="sse-lf")
    rec = exchange(stream.body, stream.url).reconstruct()
    assert payload_types(rec) == {gemini.FullGenerateContentResponse}
    assert [payload_of(chunk.payload) for chunk in rec.chunks] == stream.events


def test_an_unknown_usage_field_stays_on_the_common_types_kept_as_sent() -> None:
    # usageMetadata is kept raw: a figure Google adds later stays on the fast path, in its place.
    body = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"STOP","index":0}],'
        b'"usageMetadata":{"promptTokenCount":3,"futureTokenCount":1,"totalTokenCount":4},"modelVersion":"m"}\r\n\r\n'
    )
    rec = exchange(body).reconstruct()
    assert payload_types(rec) == {gemini.GenerateContentResponse}
    usage = {"promptTokenCount": 3, "futureTokenCount": 1, "totalTokenCount": 4}
    assert list(rec.to_native()["usageMetadata"].items()) == list(usage.items())  # the wire's order too
    assert payload_of(rec.chunks[0].payload)["usageMetadata"] == usage
    assert (rec.usage.prompt_tokens, rec.usage.total_tokens) == (3, 4)


@pytest.mark.parametrize("usage", [b"null", b"5", b'"x"', b"[]"])
def test_a_usage_that_is_not_an_object_is_passed_over_on_both_paths(
    usage: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":3,"totalTokenCount":4}}\r\n\r\n'
    second = (
        b'data: {"candidates":[{"content":{"parts":[{"text":"!"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":'
        + usage
        + b"}\r\n\r\n"
    )
    fast, general = both_paths(lambda: exchange(first + second), monkeypatch)
    assert snapshot(fast) == snapshot(general)
    assert fast.usage is not None and fast.usage.total_tokens == 4


@pytest.mark.parametrize(
    "payload",
    [
        {"candidates": [{"content": {"parts": [{"text": "Hi", "futurePartField": 1}], "role": "model"}}]},
        {"candidates": [{"content": {"parts": [{"text": None}], "role": "model"}}]},
        {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "index": "0"}]},
        {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}], "futureEnvelope": {}},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "partialArgs": 5}}], "role": "model"}}]},
        {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}},
    ],
    ids=[
        "unknown-part-field",
        "null-text",
        "string-index",
        "unknown-envelope-field",
        "partial-args-not-a-list",
        "error",
    ],
)
def test_anything_the_types_do_not_know_takes_the_general_path(
    payload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"
    fast, general = both_paths(lambda: exchange(body), monkeypatch)
    assert payload_types(fast) == {dict}
    assert snapshot(fast) == snapshot(general)


@pytest.mark.parametrize("field", ["usageMetadata", "args"])
def test_json_nested_too_deep_for_msgspec_takes_the_general_path(field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # msgspec raises RecursionError (not a ValueError) past its depth; compared by warnings
    # only, as comparing the payloads would recurse as deep.
    deep = b"[" * 1000 + b"]" * 1000
    if field == "usageMetadata":
        payload = b'{"candidates":[],"usageMetadata":{"nested":' + deep + b"}}"
    else:
        payload = b'{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":' + deep + b"}}}]}}]}"
    fast, general = both_paths(lambda: exchange(b"data: " + payload + b"\r\n\r\n"), monkeypatch)
    assert [w.code for w in fast.warnings] == [w.code for w in general.warnings]
    assert "reconstruction_failed" not in [w.code for w in fast.warnings]


@pytest.mark.parametrize(
    ("role", "types"),
    [("user", gemini.GenerateContentResponse), ("function", gemini.FullGenerateContentResponse)],
    ids=["documented", "other"],
)
def test_role_kept_as_sent(role: str, types: type, monkeypatch: pytest.MonkeyPatch) -> None:
    # Content.role is "user" or "model" (https://ai.google.dev/api/caching#Content); any other
    # string takes the Full types, whose role is any string.
    candidate = {"content": {"parts": [{"text": "Hi"}], "role": role}, "finishReason": "STOP"}
    body = b"data: " + json.dumps({"candidates": [candidate]}).encode() + b"\n\n"
    fast, general = both_paths(lambda: exchange(body), monkeypatch)
    assert payload_types(fast) == {types}
    assert fast.to_native()["candidates"][0]["content"]["role"] == role
    assert snapshot(fast) == snapshot(general)


def test_typed_payloads_keep_the_json_types_of_numbers() -> None:
    body = (
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","willContinue":true}}]}}]}\n\n'
        b'data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.n","numberValue":5}]}}]},'
        b'"finishReason":"STOP","avgLogprobs":0}]}\n\n'
    )
    rec = exchange(body, VERTEX_STREAM_URL).reconstruct()
    assert payload_types(rec) == {gemini.FullGenerateContentResponse}
    assert exact(payload_of(rec.chunks[1].payload)) == exact(json.loads(body.split(b"\n\n")[1][6:]))
    assert rec.choices[0].tool_calls[0].arguments == '{"n":5}'


# -- the same reconstruction on both paths -------------------------------------------------------


@pytest.mark.parametrize("seed", range(150))
@pytest.mark.parametrize("framing", ["sse-crlf", "sse-lf"])
def test_generated_stream_same_on_both_paths(seed: int, framing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = gen.generate(seed, variant="complete", framing=framing)
    rng = random.Random(seed)
    common = gen.frame(common_only(stream.events), framing, rng).body
    for body, types in ((stream.body, None), (common, {gemini.GenerateContentResponse})):
        for reads in (None, random_reads(body, rng)):
            fast, general = both_paths(lambda body=body, reads=reads: exchange(body, stream.url, reads), monkeypatch)
            assert types is None or payload_types(fast) == types, stream.describe()
            assert payload_types(fast) <= {gemini.GenerateContentResponse, gemini.FullGenerateContentResponse}
            assert payload_types(general) == {dict}
            assert snapshot(fast) == snapshot(general), stream.describe()


@pytest.mark.parametrize("seed", range(1000, 1060))
def test_cut_and_errored_streams_same_on_both_paths(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = gen.generate(seed, variant=("truncated", "error")[seed % 2], framing=("sse-crlf", "sse-lf")[seed % 3 % 2])
    reads = random_reads(stream.body, random.Random(seed))
    fast, general = both_paths(lambda: exchange(stream.body, stream.url, reads), monkeypatch)
    assert snapshot(fast) == snapshot(general), stream.describe()


def test_recorded_streams_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = 0
    for path in sorted(CORPUS.glob("*__gemini__*.sse")):
        body = path.read_bytes()
        url = VERTEX_STREAM_URL if "vertex" in path.name else STREAM_URL
        for reads in (None, [(end / 10, end) for end in [*range(97, len(body), 97), len(body)]]):
            fast, general = both_paths(lambda body=body, url=url, reads=reads: exchange(body, url, reads), monkeypatch)
            assert snapshot(fast) == snapshot(general), path.name
        typed += payload_types(fast) != {dict}
    assert typed >= 8


# -- Vertex's streamed arguments ------------------------------------------------------------------


@pytest.mark.parametrize("whole_stream", [True, False], ids=["fast", "general"])
def test_streamed_arguments_leave_the_opening_payload_as_sent(
    whole_stream: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An opening functionCall with arguments already in it, continued by partialArgs: the
    # merged call has the whole string, the first chunk still what was sent.
    opening = {"functionCall": {"name": "f", "args": {"q": "a", "deep": {"n": "x"}}, "willContinue": True}}
    pieces = [{"jsonPath": "$.q", "stringValue": "bc"}, {"jsonPath": "$.deep.n", "stringValue": "yz"}]
    sent = [
        {"candidates": [{"content": {"role": "model", "parts": [opening]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"partialArgs": pieces}}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "done"}]}, "finishReason": "STOP"}]},
    ]
    body = b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in sent)
    monkeypatch.setattr(events, "WHOLE_STREAM", whole_stream)
    rec = exchange(body, VERTEX_STREAM_URL).reconstruct()
    assert [payload_of(chunk.payload) for chunk in rec.chunks] == sent
    assert rec.choices[0].tool_calls[0].parsed_arguments == {"q": "abc", "deep": {"n": "xyz"}}


def test_a_candidate_finished_between_two_others_leaves_each_candidates_text_in_its_own_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A candidate with a finish reason goes through the general fold's `_candidate`; the typed
    driver then looks the next candidate's state up again, rather than keep the one it had
    (here candidate 1's, while the next text, with no index, is candidate 0's)."""
    texts = [("a", None, None), ("A", 1, None), ("!", 0, "STOP"), ("b", None, None)]
    body = b""
    for text, index, finish in texts:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if index is not None:
            candidate["index"] = index
        if finish is not None:
            candidate["finishReason"] = finish
        body += b"data: " + json.dumps({"candidates": [candidate]}).encode() + b"\n\n"
    fast, general = both_paths(lambda: exchange(body), monkeypatch)
    assert payload_types(fast) == {gemini.GenerateContentResponse}
    assert [choice.content for choice in fast.choices] == ["a!b", "A"]
    assert snapshot(fast) == snapshot(general)
