"""Conversations found from resent histories: threads (conversation, turn, parent, branch) and
the history notices, on captures/branching_conversation.jsonl (written by
tests/data/make_conversation_captures.py), the replayed recording, seed 001, and generated trees."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from bundled import captures_as_cloned
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer
from analyzer import threads as threads_module
from analyzer.model import Exchange, Notice, Request, Response
from analyzer.protocols.openai_chat import request_messages
from analyzer.threads import Thread, history_notices, threads

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
SCRIPT = ROOT / "tests" / "data" / "make_conversation_captures.py"
_spec = importlib.util.spec_from_file_location("make_conversation_captures", SCRIPT)
assert _spec is not None and _spec.loader is not None
made = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(made)

BRANCHING = CAPTURES / "branching_conversation.jsonl"
REDACTED = re.compile(r"<redacted:[0-9a-f]{8}>")


def load(path: Path) -> analyzer.Exchanges:
    exchanges = analyzer.load(path)
    assert not exchanges.problems
    return exchanges


def line(n: int) -> str:
    return f"branching_conversation.jsonl#{n}"


# -- the capture file ------------------------------------------------------------------------


def test_branching_capture_is_what_make_conversation_captures_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], check=True, timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BRANCHING.name]
    assert (tmp_path / BRANCHING.name).read_bytes() == BRANCHING.read_bytes(), "run make_conversation_captures.py"


def test_branching_capture_lines_are_chatcap_1_har_entries_with_redacted_credentials() -> None:
    text = BRANCHING.read_text(encoding="utf-8")
    assert made.base.OPENAI_KEY not in text and made.base.VLLM_KEY not in text and "__cf_bm=" not in text
    for entry in map(json.loads, text.splitlines()):
        assert entry["comment"].startswith("synthetic exchange")
        assert (entry["_chatcap"]["schema"], entry["_chatcap"]["complete"]) == ("chatcap/1", True)
        named = {h["name"] for part in ("request", "response") for h in entry[part]["headers"] if REDACTED.fullmatch(h["value"])}  # fmt: skip
        assert sorted(named) == entry["_chatcap"]["redacted"] and "authorization" in named
        body = entry["response"]["content"]["text"].encode("utf-8")
        reads = entry["response"]["_chunks"]
        assert [end for _, end in reads] == sorted({end for _, end in reads}) and reads[-1][1] == len(body)
        assert [t for t, _ in reads] == sorted({t for t, _ in reads})
        timings = entry["timings"]
        assert timings["send"] + timings["wait"] <= reads[0][0]
        assert timings["send"] + timings["wait"] + timings["receive"] == reads[-1][0] == entry["time"]


def test_branching_capture_reconstructs_what_the_script_streamed() -> None:
    exchanges = load(BRANCHING)
    replies = [x.reconstruct().choices[0] for x in exchanges]
    assert [(c.content, c.reasoning) for c in replies] == [
        (made.R1, None),
        ("", made.TRAVEL_REASONING_1),
        (made.R2, None),
        (made.TRAVEL_ANSWER_2, made.TRAVEL_REASONING_2),
        (made.R2_REGENERATED, None),
        (made.R2_EDITED, None),
        (made.TRAVEL_ANSWER_3, made.TRAVEL_REASONING_3),
        (made.R3, None),
        (made.R_NEW_CHAT, None),
        (made.R4, None),
    ]
    assert [(call.id, call.name, call.parsed_arguments) for call in replies[1].tool_calls] == [
        (made.TOOL_CALL_ID, "get_forecast", {"city": "Lisbon", "day": "tomorrow"})
    ]
    assert all(x.reconstruct().warnings == [] for x in exchanges)


# -- threads ---------------------------------------------------------------------------------


def test_threads_of_a_multi_turn_capture_with_a_regeneration_and_an_edit() -> None:
    assert threads(load(BRANCHING)) == {
        line(1): Thread("c1", 1, None, None),  # baking, turn 1
        line(2): Thread("c2", 1, None, None),  # travel: another system prompt, another conversation
        line(3): Thread("c1", 2, line(1), None),
        line(4): Thread("c2", 1, line(2), None),  # the tool result: still the first question's turn
        line(5): Thread("c1", 2, line(1), "regeneration"),  # line 3's request again
        line(6): Thread("c1", 2, line(1), "edit"),  # line 3's question edited
        line(7): Thread("c2", 2, line(4), None),  # reasoning resent as content: still a continuation
        line(8): Thread("c1", 3, line(6), None),  # on the edited branch, re-serialised
        line(9): Thread("c3", 1, None, None),  # the same system prompt, a new first question: a new chat
        line(10): Thread("c1", 4, line(8), None),  # line 8's reply cut by the user: still its continuation
    }


def test_replayed_conversation_regeneration_and_edit() -> None:
    exchanges = load(CAPTURES / "replayed" / "conversation.jsonl")
    ids = [x.id for x in exchanges]
    assert threads(exchanges) == {
        ids[0]: Thread("c1", 1, None, None),
        ids[1]: Thread("c1", 2, ids[0], None),
        ids[2]: Thread("c1", 3, ids[1], None),
        ids[3]: Thread("c1", 3, ids[1], "regeneration"),
        ids[4]: Thread("c1", 4, ids[3], None),  # continues the regenerated reply, not the first one
        ids[5]: Thread("c1", 4, ids[3], "edit"),
        ids[6]: Thread("c1", 5, ids[5], None),
    }
    assert all(notices == [] for notices in history_notices(exchanges).values())


def test_retry_after_an_http_error_is_a_regeneration() -> None:
    exchanges = load(CAPTURES / "errors.jsonl")  # line 1: HTTP 429; line 2: the same request again
    assert list(threads(exchanges).values()) == [
        Thread("c1", 1, None, None),
        Thread("c1", 1, None, "regeneration"),
        Thread("c2", 1, None, None),
    ]


def test_every_bundled_exchange_gets_a_thread_and_files_stay_apart() -> None:
    exchanges = load(captures_as_cloned())
    found = threads(exchanges)
    assert set(found) == {x.id for x in exchanges}
    by_conversation: dict[str, set[str]] = {}
    for exchange_id, thread in found.items():
        by_conversation.setdefault(thread.conversation, set()).add(exchange_id.split("#")[0])
    assert all(len(files) == 1 for files in by_conversation.values())
    # Seeds have no start time: they come last, in input order, each a conversation of its own.
    assert [found[x.id].conversation for x in exchanges if x.started_at is None] == [
        f"c{n}" for n in range(len(by_conversation) - 2, len(by_conversation) + 1)
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(10)))
def test_shuffled_input_gives_the_same_threads(permutation: list[int]) -> None:
    exchanges = load(BRANCHING)
    shuffled = [exchanges[n] for n in permutation]
    assert set(threads(shuffled)) == {x.id for x in exchanges}  # every exchange gets a Thread
    assert threads(shuffled) == threads(exchanges)
    assert history_notices(shuffled) == history_notices(exchanges)


# -- notices ---------------------------------------------------------------------------------


def test_reasoning_resent_as_content_is_flagged_with_its_size() -> None:
    notices = history_notices(load(BRANCHING))
    assert notices[line(7)] == [
        Notice(
            "reasoning_in_history",
            "the history resends reasoning as content, inflating the prompt; "
            f"message 5 carries the reasoning {line(4)} received: {len(made.TRAVEL_REASONING_2)} characters",
        )
    ]
    assert notices[line(7)][0].message.endswith(": 94 characters")


def test_reply_cut_by_the_user_differs_from_what_was_received() -> None:
    notices = history_notices(load(BRANCHING))
    assert notices[line(10)] == [
        Notice("history_differs", f"message 7 is not what {line(8)} received: it keeps the first 131 of 227 characters")
    ]
    assert (len(made.R3_FIRST), len(made.R3)) == (131, 227)
    assert request_messages(load(BRANCHING)[9])[6]["content"] == made.R3_FIRST


def test_other_branching_exchanges_have_no_notices() -> None:
    notices = history_notices(load(BRANCHING))
    assert set(notices) == {line(n) for n in range(1, 11)}
    # Line 4 resends the tool call re-serialised and with its reasoning_content field, line 8
    # its history as content parts with a trailing newline: the same messages, no notice.
    assert {n for n in range(1, 11) if notices[line(n)]} == {7, 10}


def test_seed_001_reasoning_in_history() -> None:
    (exchange,) = load(CAPTURES / "001_abeb99c31e8268f6.txt")
    history = request_messages(exchange)
    resent = history[1]["content"]
    assert resent.startswith("The user asks:") and resent.endswith('"Hello my friend"Hello my friend')
    assert history_notices([exchange]) == {
        exchange.id: [
            Notice(
                "reasoning_in_history",
                "the history resends reasoning as content, inflating the prompt; message 2 reads as reasoning "
                f"(it opens 'The user asks'; no earlier exchange received it): {len(resent)} characters",
            )
        ]
    }
    assert threads([exchange]) == {exchange.id: Thread("c1", 2, None, None)}


# -- generated conversation trees --------------------------------------------------------------

# One step of a generated session: what the user does, to which earlier exchange (any number,
# taken modulo how many there are), how the client resends the reply it continues, where
# replies carry reasoning (nowhere, a <think> block opening the content, `reasoning_content`),
# how many choices a reply has and which one is continued.
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["new chat", "continue", "regenerate", "edit"]),
        st.integers(0, 10**6),
        st.sampled_from(["as received", "answer only", "cut", "reasoning first", "reasoning last"]),
        st.sampled_from([None, "think", "field"]),
        st.integers(1, 2),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=30,
)


@dataclass
class Node:
    """One generated exchange, and what the rules must find for it."""

    history: list[dict[str, Any]]
    replies: list[str]
    reasoning: list[str | None]  # each reply's reasoning_content
    thread: Thread
    differs: bool  # the message at the continuation point is not what the parent received
    children: int = 0


def grow(steps: list[tuple[str, int, str, str | None, int, int]]) -> list[Node]:
    """A session that starts chats, continues, regenerates and edits as `steps` say."""
    nodes: list[Node] = []
    conversations = 0
    for n, (action, pick, resend, where, choices, chosen) in enumerate(steps):
        # Every reply and reasoning starts with its own id, so even a cut one says which it was.
        answers = [f"R{n}.{i}: the answer, long enough to cut in half" for i in range(choices)]
        thoughts = [f"T{n}.{i}: weighing it up before answering" for i in range(choices)]
        replies = [
            f"<think>\n{t}\n</think>\n\n{a}" if where == "think" else a for t, a in zip(thoughts, answers, strict=True)
        ]
        reasoning = thoughts if where == "field" else [None] * choices

        target = nodes[pick % len(nodes)] if nodes else None
        if target is None or action == "new chat" or (action == "edit" and target.thread.parent is None):
            # A new chat, or the first question edited: the same on the wire.
            conversations += 1
            history = [{"role": "system", "content": f"S{n % 2}"}, {"role": "user", "content": f"Q{n}"}]
            nodes.append(Node(history, replies, reasoning, Thread(f"c{conversations}", 1, None, None), differs=False))
            continue
        if action == "continue":
            reply = target.replies[chosen % len(target.replies)]
            thought = target.reasoning[chosen % len(target.reasoning)]
            sent = {
                "as received": reply,
                "answer only": reply.split("</think>\n\n")[-1],
                "cut": reply[: len(reply) // 2],
                "reasoning first": f"{thought or ''}{reply}",  # seed 001's client
                "reasoning last": f"{reply}\n\n{thought or ''}",
            }
            history = [*target.history, {"role": "assistant", "content": sent[resend]}, {"role": "user", "content": f"Q{n}"}]  # fmt: skip
            branch = "edit" if target.children else None
            thread = Thread(target.thread.conversation, target.thread.turn + 1, f"x{nodes.index(target)}", branch)
            target.children += 1
            nodes.append(Node(history, replies, reasoning, thread, differs=resend == "cut"))
            continue
        # A regeneration sends the same history again; an edit another last question.
        history = target.history if action == "regenerate" else [*target.history[:-1], {"role": "user", "content": f"Q{n}"}]  # fmt: skip
        branch = "regeneration" if action == "regenerate" else "edit"
        thread = Thread(target.thread.conversation, target.thread.turn, target.thread.parent, branch)
        if target.thread.parent is not None:
            nodes[int(target.thread.parent[1:])].children += 1
        nodes.append(Node(history, replies, reasoning, thread, target.differs))
    return nodes


def exchanges_of(nodes: list[Node]) -> list[Exchange]:
    """The nodes as non-streaming chat/completions exchanges, one second apart."""
    exchanges = []
    for n, node in enumerate(nodes):
        request = {"model": "m", "messages": node.history}
        response = {
            "id": f"chatcmpl-generated{n}",
            "object": "chat.completion",
            "created": 1758067200 + n,
            "model": "m",
            "choices": [
                {"index": i, "message": {"role": "assistant", "content": text, "reasoning_content": thought}}
                for i, (text, thought) in enumerate(zip(node.replies, node.reasoning, strict=True))
            ],
        }
        exchanges.append(
            Exchange(
                id=f"x{n}",
                source="generated",
                format="json-dump",
                request=Request("POST", "https://api.example/v1/chat/completions", body=orjson.dumps(request)),
                response=Response(200, headers=[("content-type", "application/json")], body=orjson.dumps(response)),
                started_at=datetime(2025, 9, 17, tzinfo=UTC) + timedelta(seconds=n),
            )
        )
    return exchanges


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, shuffle=st.randoms(use_true_random=False))
def test_generated_sessions_give_their_threads_and_notices(
    steps: list[tuple[str, int, str, str | None, int, int]], shuffle: Any
) -> None:
    nodes = grow(steps)
    exchanges = exchanges_of(nodes)
    shuffle.shuffle(exchanges)
    assert threads(exchanges) == {f"x{n}": node.thread for n, node in enumerate(nodes)}
    notices = history_notices(exchanges)
    received = [thought for node in nodes for thought in node.reasoning if thought]
    for n, node in enumerate(nodes):
        # A reply resent with its <think> block (whole, or cut inside it) or with the reasoning
        # it received joined to it carries reasoning, in this request and every later one.
        resent = [m["content"] for m in node.history if m["role"] == "assistant"]
        carries = any("<think>" in text or any(thought in text for thought in received) for text in resent)
        expected = ["reasoning_in_history"] * carries + ["history_differs"] * node.differs
        assert [notice.code for notice in notices[f"x{n}"]] == expected, n


# -- who a conversation talks to ---------------------------------------------------------------

IDENTITIES = {
    "other host": (
        "https://api.other.example/v1/chat/completions",
        [("Authorization", "Bearer sk-one-abcdefghijklmnop")],
    ),
    "other key": ("https://api.example/v1/chat/completions", [("Authorization", "Bearer sk-two-abcdefghijklmnop")]),
    "other key in the query": ("https://api.example/v1/chat/completions?key=AIzaOtherKey", []),
}


@settings(max_examples=100, deadline=None)
@given(steps=STEPS, other=st.sampled_from(sorted(IDENTITIES)), shuffle=st.randoms(use_true_random=False))
def test_the_same_session_sent_to_another_host_or_with_another_key_is_another_conversation(
    steps: list[tuple[str, int, str, str | None, int, int]], other: str, shuffle: Any
) -> None:
    """Comparing providers with the same prompts is a core use: the second run of a session
    is a conversation of its own, with the same shape, never a regeneration of the first."""
    nodes = grow(steps)
    first = exchanges_of(nodes)
    for exchange in first:
        assert exchange.request is not None
        exchange.request.headers = [("Authorization", "Bearer sk-one-abcdefghijklmnop")]
    url, headers = IDENTITIES[other]
    second = exchanges_of(nodes)
    for exchange in second:
        assert exchange.request is not None
        exchange.id = "y" + exchange.id[1:]
        exchange.request.url, exchange.request.headers = url, headers
    both = [*first, *second]
    shuffle.shuffle(both)
    found = threads(both)
    alone = threads(first)
    conversations_of = {name: {found[x.id].conversation for x in xs} for name, xs in (("1", first), ("2", second))}
    assert conversations_of["1"].isdisjoint(conversations_of["2"])
    for n in range(len(nodes)):
        one, two, expected = found[f"x{n}"], found[f"y{n}"], alone[f"x{n}"]
        assert (one.turn, one.branch, one.parent) == (expected.turn, expected.branch, expected.parent)
        assert (two.turn, two.branch) == (expected.turn, expected.branch)
        assert two.parent == (None if expected.parent is None else "y" + expected.parent[1:])


def test_one_key_redacted_in_one_capture_and_not_in_another_is_one_identity() -> None:
    key = "sk-proj-sameKeyabcdefghijklmnopqrst"
    plain = Exchange(id="a", source="s", format="har", request=Request("POST", "https://h/v1", headers=[("x-api-key", key)]),
                     response=None)  # fmt: skip
    redacted = Exchange(id="b", source="s", format="har", request=Request("POST", "https://h/v1",
                        headers=[("x-api-key", analyzer.redact.token(key))]), response=None)  # fmt: skip
    assert analyzer.threads.session_identity(plain) == analyzer.threads.session_identity(redacted)
    assert analyzer.threads.session_identity(plain)[1] != ()


# -- the index against a brute force --------------------------------------------------------------


def brute_force_threads(exchanges: list[Exchange]) -> dict[str, Thread]:
    """The rules in analyzer.threads' docstring applied the slow way: each exchange's normalised
    history compared whole with every earlier exchange's, no digest, trie or dict in between.
    (Messages are normalised and replies read by the module's own `_message` and `_replies`, and
    a changed reply is matched by its `_loose_parent`: what is under test is the index.)"""
    order = threads_module.ordered(exchanges)
    sessions = [threads_module.session_identity(x) for x in order]
    histories = [[threads_module._message(m) for m in request_messages(x)] for x in order]
    replies = [threads_module._replies(x) for x in order]
    found: dict[str, Thread] = {}
    parents: list[int | None] = []
    conversations: list[str] = []
    for n, (session, history) in enumerate(zip(sessions, histories, strict=True)):
        earlier = [p for p in range(n) if sessions[p] == session and histories[p]]
        replied = [at for at, message in enumerate(history) if message.role == "assistant"]
        parent = None
        for at in reversed(replied):
            same = [p for p in earlier if histories[p] == history[:at]]
            exact = [p for p in same if any(history[at] in reply.variants for reply in replies[p])]
            if exact:
                parent = exact[-1]
                break
            if same:
                walked = [threads_module.threadable(x) for x in order]
                received = [item.replies for item in walked]
                parent = threads_module._loose_parent(walked, received.__getitem__, same, history[at])[0]
                break
        twins = [p for p in earlier if history and histories[p] == history]
        branch = None
        if twins:
            branch = "regeneration"
        elif parent is not None and parent in parents:
            branch = "edit"
        if parent is not None:
            conversation = conversations[parent]
        elif twins:
            conversation = conversations[twins[0]]
        else:
            conversation = None
            for at in reversed(replied):
                roots = [p for p in earlier if parents[p] is None and histories[p][: at + 1] == history[: at + 1]]
                if roots:
                    conversation, branch = conversations[roots[0]], "edit"
                    break
            if conversation is None:
                conversation = f"c{len(set(conversations)) + 1}"
        parents.append(parent)
        conversations.append(conversation)
        turn = max(1, sum(message.role == "user" for message in history))
        found[order[n].id] = Thread(conversation, turn, order[parent].id if parent is not None else None, branch)
    return found


def respelled(message: dict[str, Any], how: str) -> dict[str, Any]:
    """`message` as a client that re-serialises its history might send it: the same to the threads."""
    text = message["content"]
    if how == "padded":
        return {**message, "content": f"\n {text}  "}
    if how == "parts":
        return {**message, "content": [{"type": "text", "text": text}]}
    if how == "with reasoning field":
        return {**message, "reasoning_content": "kept apart"}
    if how == "keys reordered":
        return dict(reversed(message.items()))
    return message


SPELLINGS = st.lists(st.sampled_from(["as sent", "padded", "parts", "with reasoning field", "keys reordered"]), max_size=40)  # fmt: skip


def respelled_sessions(
    steps: list[tuple[str, int, str, str | None, int, int]],
    spellings: list[str],
    second_key: set[int],
    same_reply: bool,
) -> list[Exchange]:
    """The exchanges of the sessions `steps` grows, some messages respelled, some requests sent
    with a second key, and (`same_reply`) regenerations that got an earlier exchange's reply."""
    nodes = grow(steps)
    exchanges = exchanges_of(nodes)
    for n, exchange in enumerate(exchanges):
        assert exchange.request is not None and exchange.request.body is not None
        if same_reply:  # an earlier exchange with this history got this very reply too
            before = next((m for m in range(n) if nodes[m].history == nodes[n].history), None)
            if before is not None:
                exchanges[before].response = exchange.response
        body = orjson.loads(exchange.request.body)
        spelled = (
            spellings[(n + i) % len(spellings)] if spellings else "as sent" for i in range(len(body["messages"]))
        )
        body["messages"] = [respelled(m, how) for m, how in zip(body["messages"], spelled, strict=False)]
        exchange.request.body = orjson.dumps(body)
        if n in second_key:
            exchange.request.headers = [("Authorization", "Bearer sk-two-abcdefghijklmnop")]
    return exchanges


# Sessions as `respelled_sessions` makes them, from generated steps, spellings, second keys and shared replies.
RESPELLED = st.builds(respelled_sessions, STEPS, SPELLINGS, st.sets(st.integers(0, 29), max_size=5), st.booleans())


@settings(max_examples=300, deadline=None)
@given(exchanges=RESPELLED, shuffle=st.randoms(use_true_random=False))
def test_the_index_finds_what_comparing_every_history_with_every_earlier_one_finds(
    exchanges: list[Exchange], shuffle: Any
) -> None:
    """Generated sessions where some requests re-serialise messages (whitespace, text parts,
    reasoning fields, key order), some go out with another credential and some regenerations get
    the very reply an earlier request got: the threads found through the index are the ones a brute-force
    comparison of whole histories finds."""
    shuffle.shuffle(exchanges)
    assert threads(exchanges) == brute_force_threads(exchanges)


def deferred(exchanges: list[Exchange]) -> tuple[dict[str, Thread], dict[str, list[Notice]]]:
    """The threads and notices `threads.Deferred` finds, given the exchanges one at a time in this order."""
    later = threads_module.Deferred(notices=True)
    for exchange in exchanges:
        later.add(exchange)
    steps = dict(later.steps())
    return {key: step.thread for key, step in steps.items()}, {key: step.notices for key, step in steps.items()}


@settings(max_examples=200, deadline=None)
@given(exchanges=RESPELLED, shuffle=st.randoms(use_true_random=False))
def test_a_walk_that_keeps_digests_not_texts_finds_the_threads_and_notices_of_one_that_keeps_the_texts(
    exchanges: list[Exchange], shuffle: Any
) -> None:
    """`Deferred` (what streaming commands thread with: messages known by digests, the assistant
    messages read back from a temporary file, every exchange read before the walk, in input
    order) against `analyse` (the exchanges in memory, messages known by their text)."""
    shuffle.shuffle(exchanges)
    assert deferred(exchanges) == threads_module.analyse(exchanges)


@pytest.mark.parametrize("where", ["captures", "tests/data/external"])
def test_a_walk_that_keeps_digests_finds_the_threads_and_notices_of_the_bundled_and_external_recordings(
    where: str,
) -> None:
    exchanges = list(analyzer.load(captures_as_cloned() if where == "captures" else ROOT / where, progress=False))
    assert len(exchanges) > 40
    assert deferred(exchanges) == threads_module.analyse(exchanges)


# Reasonings that share their first characters (most reasoning opens alike), around the
# 16-character key and the 64-character head the finder keeps instead of a long text.
_OPENING = "Okay, the user asks about "
_reasoning_texts = st.builds(
    lambda tail, repeat: _OPENING + tail * repeat,
    st.text(alphabet="ab é\n", min_size=0, max_size=12),
    st.integers(min_value=0, max_value=12),
)


@settings(max_examples=300, deadline=None)
@given(
    received=st.lists(_reasoning_texts, max_size=6),
    message=st.one_of(
        _reasoning_texts, st.builds(lambda r, more: r + more, _reasoning_texts, st.text("ab é", max_size=8))
    ),
)
def test_the_reasoning_finder_finds_the_latest_received_reasoning_a_message_starts_with(
    received: list[str], message: str
) -> None:
    """The finder keeps a long reasoning as digests, not text: it must find what keeping every
    text and asking `startswith` of each, latest first, finds (and the verdict's length)."""
    finder = threads_module._ReasoningFinder()
    for n, reasoning in enumerate(received):
        finder.add(reasoning, f"x#{n}")
    expected = next(
        (f"x#{n}" for n, r in reversed(list(enumerate(received))) if len(r) >= 16 and message.startswith(r)), None
    )
    verdict = finder.judge(message, 0, [])
    if expected is None:
        assert verdict is None or "carries the reasoning" not in verdict[0]
    else:
        length = len(received[int(expected.split("#")[1])])
        assert verdict == (f"carries the reasoning {expected} received", length)


def test_the_reasoning_finder_keeps_no_text_of_a_reasoning_64_characters_or_longer() -> None:
    finder = threads_module._ReasoningFinder()
    long, short = _OPENING + "x" * 40, _OPENING + "y"
    finder.add(long, "x#1")
    finder.add(short, "x#2")
    kept = [known.text for known in finder.received[_OPENING[:16]]]
    assert kept == [None, short]
    assert finder.judge(long + " and so on", 1, [])[1] == len(long)
