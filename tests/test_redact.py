"""Redaction works on structure: every credential out, JSON still JSON, nothing else touched."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from bundled import BUNDLED_CAPTURES, CAPTURES
from bundled import REAL_CORPUS as CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st
from secrets_plant import (
    HEADERS,
    NAMED,
    SENSITIVE,
    SHAPES,
    STREAMS,
    USERINFO_PASSWORD,
    places,
    split,
)

import analyzer
from analyzer import redact
from analyzer.redact import redact_body, redact_headers, redact_prose, redact_text, text_edits, token

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "<redacted:"


@pytest.mark.parametrize("place", list(places("x")))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_credential_shape_is_redacted_in_every_place(shape: str, place: str) -> None:
    text = places(SHAPES[shape])[place]
    redacted = redact_text(text)
    assert SENSITIVE[shape] not in redacted
    assert PLACEHOLDER in redacted
    if text.startswith("{"):
        json.loads(redacted)


def test_json_encoded_bearer_inside_json_stays_json() -> None:
    """The report's one-liner: a Bearer value in JSON inside JSON."""
    text = json.dumps({"c": json.dumps({"a": "Bearer x1", "auth": "Bearer sk-live-9f8e7d6c5b4a"})})
    inner = json.loads(json.loads(redact_text(text))["c"])
    assert inner["a"] == "Bearer x1"  # a word after "Bearer" in a value no name marks: not a credential
    assert inner["auth"].startswith("Bearer <redacted:")


@pytest.mark.parametrize(("name", "value"), list(NAMED.items()))
def test_values_under_credential_names_are_redacted_whatever_they_look_like(name: str, value: str) -> None:
    for text in (json.dumps({name: value}), json.dumps({"outer": json.dumps({"deep": {name: value}})})):
        redacted = redact_text(text)
        assert value not in redacted
        json.loads(redacted)


def test_a_number_under_a_credential_name_becomes_a_placeholder_string() -> None:
    redacted = json.loads(redact_text('{"password": 123456, "max_tokens": 123456}'))
    assert redacted["password"].startswith(PLACEHOLDER) and redacted["max_tokens"] == 123456


def test_names_that_hold_no_credentials_are_kept() -> None:
    body = {
        "max_tokens": 100,
        "eos_token": "</s>",
        "prompt_cache_key": "user-1234-session-abcdef",
        "logprobs": {"content": [{"token": "Hello", "logprob": -0.1}, {"token": " world2024", "logprob": -2}]},
        "content": [{"type": "thinking", "thinking": "ok", "signature": "EqQBCkYIBxgCKkB9Lm2Tz6Wx9Pv3Rb7Yc1Nd5Jf0Gk"}],
        "encrypted_content": "gAAAAABm4Lm2Tz6Wx9Pv3Rb7Yc1Nd5Jf0Gk4Sa8Ue2Io6Pu0Ty4Mq8",
        "id": "chatcmpl-Bq3Lm8Tz2Wx6Pv9Rb1Yc4Nd7",
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    text = json.dumps(body)
    assert redact_text(text) == text


@pytest.mark.parametrize(("name", "value"), list(HEADERS.items()))
def test_credential_headers_are_redacted_by_name_keeping_the_scheme(name: str, value: str) -> None:
    [(kept_name, redacted)] = redact_headers([(name, value)])
    assert kept_name == name and value.split()[-1] not in redacted and PLACEHOLDER in redacted
    if value.startswith("Bearer "):
        assert redacted.startswith("Bearer <redacted:")


def test_ordinary_headers_are_left_alone() -> None:
    headers = [("Accept", "*/*"), ("Content-Type", "application/json"), ("User-Agent", "OpenAI/Python 1.99.0"),
               ("x-stainless-retry-count", "0"), ("Idempotency-Key", "stainless-python-retry-0f8e7d")]  # fmt: skip
    assert redact_headers(headers) == headers


def test_url_userinfo_password_and_secret_query_values_are_redacted() -> None:
    url = f"https://alice:{USERINFO_PASSWORD}@example.test/v1beta/models/g:stream?alt=sse&key=AIzaQ&api_key=zz9"
    redacted = redact_text(url)
    assert USERINFO_PASSWORD not in redacted and "key=AIzaQ" not in redacted and "zz9" not in redacted
    assert redacted.startswith("https://alice:<redacted:") and "alt=sse" in redacted


def test_headers_pasted_into_text_are_redacted_by_name() -> None:
    raw = "POST /v1/chat/completions HTTP/1.1\r\nx-api-key: abc123\r\nAuthorization: Bearer qq\r\nAccept: */*\r\n"
    redacted = redact_text(raw)
    assert "abc123" not in redacted and "Bearer qq" not in redacted and "Accept: */*" in redacted


# -- JSON stays JSON, whatever it holds ----------------------------------------------------

_secret_or_text = st.one_of(
    st.sampled_from(list(SHAPES.values())), st.text(max_size=20), st.sampled_from(["Bearer x1", "Basic abc", "a\\b"])
)
_leaf_strings = st.builds(lambda parts: " ".join(parts), st.lists(_secret_or_text, max_size=3))
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _leaf_strings,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["note", "content", "text", "auth", "k"]), inner, max_size=4)
        | inner.map(lambda value: json.dumps(value))
    ),  # JSON held in a JSON string
    max_leaves=12,
)


def _shape(value: object) -> object:
    """The value's structure: containers and keys, with every string as "s" (and a number
    under a credential's name too, since it becomes a placeholder string)."""
    if isinstance(value, dict):
        return {key: "s" if key == "auth" and _is_number(item) else _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return "s" if isinstance(value, str) else value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, ascii_only=st.booleans())
def test_redacted_json_is_json_with_the_same_structure_and_no_credential(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    redacted = redact_text(text)
    assert _shape(json.loads(redacted)) == _shape(value)
    for secret in SENSITIVE.values():
        assert secret not in redacted


@settings(max_examples=200, deadline=None)
@given(value=_json_values)
def test_redaction_is_idempotent(value: object) -> None:
    once = redact_text(json.dumps(value))
    assert redact_text(once) == once


# -- prose is never touched ---------------------------------------------------------------

_WORDS = ("a basic addition problem", "the bearer of bad news", "Basic", "Bearer", "token", "key", "secret",
          "password", "sk-", "ask-me-anything", "eyJ", "AIza", "https://example.test/a?b=c", "api", "auth:",
          "cookie", "x-api-key", "don't", "2024", "__init__", "+1", "e=mc2", "key: value", "tokens=12")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_WORDS) | st.text(max_size=12), max_size=30))
def test_prose_is_never_changed(words: list[str]) -> None:
    text = " ".join(words)
    assert redact_prose(text) == text


def _real_texts() -> list[str]:
    """Every text, reasoning and tool argument that real models produced in the recordings."""
    files = [
        *(p for p in BUNDLED_CAPTURES if p.parent == CAPTURES and p.suffix == ".jsonl"),
        *sorted(CORPUS.glob("*.sse")),
    ]
    texts = []
    for exchange in analyzer.load(files, progress=False):
        for choice in exchange.reconstruct().choices:
            texts += [choice.content or "", choice.reasoning or "", *(call.arguments for call in choice.tool_calls)]
    return [text for text in texts if text]


def test_real_model_output_is_never_changed() -> None:
    texts = _real_texts()
    assert len(texts) > 100
    changed = [text[:80] for text in texts if redact_text(text) != text]
    assert changed == []


# -- stream bodies: split secrets and the reads' offsets ----------------------------------


@pytest.mark.parametrize("parts", [2, 3, 7])
@pytest.mark.parametrize("protocol", list(STREAMS))
def test_a_key_spelled_across_stream_chunks_is_redacted_in_the_reconstruction(protocol: str, parts: int) -> None:
    key = SHAPES["openai_project_key"]
    path, build = STREAMS[protocol]
    body = build(split(f"Your key is {key} — keep it.", parts))
    redacted, _ = redact_body(body)
    for n in range(0, len(key) - 12):
        assert key[n : n + 12].encode() not in redacted
    [exchange] = analyzer.parse(_pair(path, redacted))
    [choice] = exchange.reconstruct().choices
    assert choice.content == f"Your key is {token(key)} — keep it."


def _pair(path: str, body: bytes) -> bytes:
    entry = {
        "request": {"method": "POST", "url": f"https://api.test{path}", "headers": [], "postData": {"text": "{}"}},
        "response": {"status": 200, "headers": [{"name": "content-type", "value": "text/event-stream"}],
                     "content": {"text": body.decode()}},
    }  # fmt: skip
    return json.dumps(entry).encode()


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(["hello ", *SHAPES.values(), "é", "世界", "Bearer q9q9q9q9q9 "]), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_read_ends_move_with_the_edits(pieces: list[str], cuts: list[int]) -> None:
    body = chat_body = STREAMS["openai-chat"][1](split("".join(pieces), 3) if pieces else ["x"])
    ends = sorted({min(cut, len(body)) for cut in cuts} | {len(body)})
    redacted, moved = redact_body(chat_body, ends)
    assert moved is not None and moved[-1] == len(redacted)
    assert moved == sorted(moved) and all(0 <= end <= len(redacted) for end in moved)
    changed = [(start, end) for start, end, _ in text_edits(body.decode())]
    for old, new in zip(ends, moved, strict=True):
        prefix = body.decode("utf-8", "surrogateescape")
        char_at = len(body[:old].decode("utf-8", "ignore"))
        if old and not any(start < char_at <= end for start, end in changed) and prefix[:char_at]:
            assert redacted[new - 1] == body[old - 1]


def test_a_body_that_is_not_utf8_is_redacted_and_its_other_bytes_kept() -> None:
    key = SHAPES["anthropic_key"]
    body = b'{"messages": [{"role": "user", "content": "bad byte \xff then ' + key.encode() + b'"}]}'
    redacted, _ = redact_body(body)
    assert key.encode() not in redacted
    assert b"bad byte \xff then <redacted:" in redacted


# -- the placeholder ----------------------------------------------------------------------


def test_placeholder_is_keyed_by_the_salt_and_stable_under_one() -> None:
    assert token("hunter2", b"salt-one-0123456") == token("hunter2", b"salt-one-0123456")
    assert token("hunter2", b"salt-one-0123456") != token("hunter2", b"salt-two-0123456")
    assert token("hunter2", b"salt-one-0123456") != token("hunter3", b"salt-one-0123456")
    assert token(token("hunter2")) == token("hunter2")


def test_salt_file_is_made_once_private_and_reused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHATCAP_REDACTION_SALT"} | {"XDG_CONFIG_HOME": str(tmp_path)}
    script = "from analyzer.redact import token; print(token('hunter2'))"
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    salt = tmp_path / "chatcap" / "redaction-salt"
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    assert first.stdout == again.stdout and first.stdout.startswith(PLACEHOLDER)
    other = env | {"XDG_CONFIG_HOME": str(tmp_path / "elsewhere")}
    elsewhere = subprocess.run([sys.executable, "-c", script], env=other, capture_output=True, text=True, check=True)
    assert elsewhere.stdout != first.stdout  # another installation's salt: the same password, another placeholder


_HIT_ALPHABET = st.sampled_from(
    [
        *redact._HIT_LITERALS,
        *redact._HIT_NAMES,
        "KEY",
        "Token",
        '"',
        "\\",
        ":",
        " ",
        "=",
        "\n",
        "a",
        "é",
        "İ",
        "日",
        "\udcff",
    ]
)


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.one_of(_HIT_ALPHABET, st.text(max_size=4)), max_size=40), cut=st.data())
def test_the_one_pass_search_finds_every_place_the_literal_by_literal_search_finds(
    pieces: list[str], cut: st.DataObject
) -> None:
    """`_hits` (Aho-Corasick, when ahocorasick_rs is there) against `_hits_by_find` (what the
    addon uses in a mitmproxy without it), over texts dense in literals and names, any window."""
    assert redact._LITERAL_SEARCH is not None  # the test extra installs ahocorasick_rs
    text = "".join(pieces)
    start = cut.draw(st.integers(0, len(text)))
    end = cut.draw(st.integers(start, len(text)))
    assert redact._hits(text, start, end) == redact._hits_by_find(text, start, end)


# The regex's own alternatives that are plain text (not `_MAYBE_STARTS`, which is under test).
_MAYBE_LITERALS = [part.replace("\\", "") for part in redact._MAYBE.pattern.split("|") if re.fullmatch(r"[\w\- ]+|ya29\\\.|hooks\\\.slack|/webhooks/", part)]  # fmt: skip
_MAYBE_ALPHABET = st.sampled_from(
    [*_MAYBE_LITERALS, "ghp_", "ghr_", "xoxb-", "Bearer abcdefgh", "bearer\tabc.defgh", "Basic QWxhZGRp",
     "basic\nQWxhZG", "://u@", "://@", ";a=", "?x=", "&tok.en-1=", "key:", "KEY \\\"=", "Token =", "ſecret=", "paſſphrase:",
     "passwd:", "AUTHorization=", "credentials:", "connection_string:", "Kookie:", "İ", "ı",
     # what comes close to a match and is not one
     "Bearer abc", "basic ", "key", "token ;", "?=", ";" + "a" * 41 + "=", ":/@", "gh_", "xo", "sk", "=", ":"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(pieces=st.lists(st.one_of(st.text(max_size=6), st.text(max_size=6), _MAYBE_ALPHABET), max_size=6))
def test_the_one_pass_maybe_answers_as_the_maybe_regex_searched_everywhere(pieces: list[str]) -> None:
    """`_maybe` (Aho-Corasick finds where `_MAYBE` could start, the regex is tried there)
    against `_MAYBE.search` over texts dense in its literals, names and case oddities."""
    assert redact._MAYBE_SEARCH is not None  # the test extra installs ahocorasick_rs
    text = "".join(pieces)
    assert redact._maybe(text) == (redact._MAYBE.search(text) is not None)


@settings(max_examples=2000, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(['"', "\\", '\\"', "\\\\", "a", "é", "\n", " ", ":", "{", "}", ","]), max_size=30
    ).map("".join),
    start=st.integers(0, 3),
)
def test_json_string_tokens_are_those_of_the_plain_pattern(text: str, start: int) -> None:
    """The JSON string pattern is written with its loop unrolled, for speed: the same tokens
    as the plain `"(?:[^"\\]|\\.)*"`, wherever a search starts."""
    plain = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
    assert [m.span() for m in redact._JSON_STRING.finditer(text, start)] == [
        m.span() for m in plain.finditer(text, start)
    ]


def test_the_modules_the_addon_loads_by_path_run_on_the_standard_library_alone(tmp_path: Path) -> None:
    """The addon loads redact.py and llmcalls.py by path inside mitmproxy's Python, which may
    not import chatcap or its dependencies (a standalone mitmproxy): in a Python started
    without site-packages (-I -S), both load and redact a key, and a JSON string nested past
    the recursion limit, as in chatcap's own Python."""
    analyzer_dir = Path(redact.__file__).resolve().parent
    program = f"""
import importlib.util, sys
def load(name):
    spec = importlib.util.spec_from_file_location("chatcap_" + name, {str(analyzer_dir)!r} + "/" + name + ".py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
redact, llmcalls = load("redact"), load("llmcalls")
deep = "[" * 5000 + "]" * 5000
text = '{{"text": "' + deep + ' sk-proj-Zk3mQ9vT2xLp8RwN5bYc", "api_key": "abc"}}'
print(redact.redact_text(text, b"salt"))
print(llmcalls.is_llm_request("POST", "/v1/chat/completions", "application/json", b"{{}}"))
"""
    env = {"PATH": os.environ.get("PATH", ""), "CHATCAP_REDACTION_SALT": "x" * 32, "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    redacted, is_llm = done.stdout.splitlines()
    expected = redact_text(
        '{"text": "' + "[" * 5000 + "]" * 5000 + ' sk-proj-Zk3mQ9vT2xLp8RwN5bYc", "api_key": "abc"}', b"salt"
    )
    assert (redacted, is_llm) == (expected, "True")
    assert "sk-proj" not in redacted and '"abc"' not in redacted
