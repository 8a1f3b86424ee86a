"""Conversations: which exchange continues which, found from the history each request resends.

Chat clients resend the whole conversation every turn, so a request whose messages are an
earlier request's messages followed by the reply that exchange received continues it.

    from analyzer.threads import history_notices, threads
    threads(xs)["conversation.jsonl#4"]   # Thread(conversation="c1", turn=3, parent="conversation.jsonl#2", branch="regeneration")
    history_notices(xs)["001_abeb99c31e8268f6.txt#1"]   # [Notice("reasoning_in_history", ...)]

    walk = Walk()                          # the same, one exchange at a time, for a caller that reads
    for x in ordered(xs):                  # each request anyway (the frames, the conversations)
        thread, notices, numbers = walk.add(x, request_messages(x))

The rules:

- **Who.** A conversation never spans hosts or credentials: only requests sent to the same
  host (and port) with the same credentials (`session_identity`: API key headers,
  `Authorization`, a `key` query parameter, compared by their redaction fingerprints) can
  continue one another, so the same prompts sent to two providers, or with two keys, are
  two conversations. Cookies do not count (browsers change them on every page); a client
  whose bearer token rotates mid-conversation starts a new one.
- **Order.** Exchanges are taken by `started_at` (ties keep their input order); those without
  a start time follow, in input order. "Earlier" below means earlier in this order, and
  conversation ids `c1`, `c2`, … are given in the order conversations first appear.
- **Messages** are compared by a key: role; content text (a string, or the text parts of a
  list, joined), trimmed at both ends, with `null`, missing and `""` alike; other content
  parts (images, audio); tool calls (id, name, and arguments, compared as parsed JSON when
  they parse); `tool_call_id`. Reasoning fields (`reasoning_content`, thinking parts), names
  and anything else are left out, so a client that re-serialises its history still matches.
- **Parent.** X continues P when X's history starts with P's history followed by an
  assistant message. Of all such P, the one with the longest history wins. At that length,
  an exchange whose reply is that message wins (the latest, when regenerations got the same
  reply). A reply is any choice of an `n>1` response, as streamed, without an opening
  `<think>` block, or its refusal as content; tool call ids the client dropped do not count.
  Failing that, the latest exchange with that history is the parent all the same (the
  client trimmed or edited the reply, or resent it with its reasoning): a `history_differs`
  notice says how the message differs from what was received, unless all it adds is that
  reply's reasoning, which `reasoning_in_history` reports.
- **Branch.** `"regeneration"`: the history is identical to an earlier exchange's (the user
  asked again, or the client retried after an error). `"edit"`: not that, but the parent
  already had an earlier child (usually the last user message was edited; also a tool
  result sent again with other content). `None` otherwise.
- **Roots.** An exchange without a parent starts a conversation, unless its history is
  identical to an earlier one's (a regeneration, in that conversation) or shares with an
  earlier root's history a start that contains an assistant message (an `"edit"` in that
  root's conversation: the capture missed the exchange both continue). Two requests that
  share only a system prompt and differ from the first user message on are two
  conversations: a new chat and an edited first question look the same on the wire.
  A request with no messages (or none recorded) is a conversation of its own.
- **Turn** is the number of user messages in the request (at least 1): a regeneration or an
  edit has the turn of what it replaces, and a tool round stays in the turn of the question
  that caused it.

Notices, one list per exchange:

- `reasoning_in_history`: assistant messages in the history carry reasoning as content (it
  inflates the prompt), with how many characters: an opening `<think>` block; the reasoning
  an earlier exchange received, word for word at the start of the message (or anywhere in
  the message that continues that exchange); or, when no exchange in the batch received it,
  a message that opens the way reasoning does (`_REASONING_OPENING`; the count is then the
  whole message, answer included, as where the reasoning ends is not known). A message keeps
  its verdict in every later request that resends it.
- `history_differs`: the assistant message at the continuation point is not what the parent
  received (see Parent above).

Results are keyed by exchange id, so ids must be unique in the batch. Cost is linear in the
size of the histories: each distinct message is normalised once and numbered, a history is a
path of numbers through a trie (every prefix of every history is a node), and every lookup
is a dict access; each resent message costs one lookup for its number and one for the next
node (benchmarks/README.md, "Frames", has the figures). Memory is a few hundred bytes a
distinct message, not its text: messages are known by digests, and the assistant messages,
the only ones read again, are the caller's to keep (`Deferred` keeps them in a temporary file).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from analyzer.model import Exchange, Notice, dumps_exact
from analyzer.protocols import request_messages
from analyzer.protocols.openai_chat import split_think
from analyzer.redact import PLACEHOLDER, is_secret_header, redact_header, redact_text
from analyzer.spill import Spill

# Content part types whose text is the message's text; other parts are compared whole.
_TEXT_PARTS = {"text", "input_text", "output_text"}
# Content part types that are reasoning, left out of the key like `reasoning_content`.
_REASONING_PARTS = {"thinking", "redacted_thinking", "reasoning"}
# The reasoning of DeepSeek (R1, V3.1+), Qwen3/QwQ and gpt-oss talks about "the user" in the
# third person from its first words ("The user asks: …", "Okay, the user wants …"); a reply
# addressed to the user does not. Seed 001's client resent such reasoning as content.
_REASONING_OPENING = re.compile(
    r"(?:(?:okay|ok|alright|all right|so|well|hmm+)[,.!]?\s+)*"
    r"the user(?:'s)?\s+(?:just\s+|now\s+|is\s+)?"
    r"(?:asks|asked|asking|wants|wanted|needs|says|said|wrote|requests|requested|mentions|mentioned"
    r"|would like|is asking|question|request|message)\b",
    re.IGNORECASE,
)
# How many exchanges with one history a changed message is compared with (the latest ones).
_LOOSE_CANDIDATES = 64
# Reasoning shorter than this is not looked for in later histories (too likely to recur).
_REASONING_MIN = 16
# A received reasoning this long or longer is kept as digests (`_ReasoningFinder`), not its text.
_REASONING_HEAD = 64


@dataclass(slots=True, frozen=True)
class Thread:
    """Where one exchange sits in its conversation."""

    # A stable id ("c1", "c2", …) in the order conversations first appear.
    conversation: str
    # The number of user messages in the request, at least 1.
    turn: int
    # The id of the exchange this one continues, or None.
    parent: str | None
    # None, "regeneration" (the same history as an earlier exchange) or "edit" (a sibling's
    # history with a different ending).
    branch: str | None


def threads(exchanges: Sequence[Exchange]) -> dict[str, Thread]:
    """Each exchange's conversation, turn, parent and branch, keyed by exchange id."""
    return _walk(exchanges, notices=False)[0]


def history_notices(exchanges: Sequence[Exchange]) -> dict[str, list[Notice]]:
    """Each exchange's `reasoning_in_history` and `history_differs` notices (maybe none), keyed by exchange id."""
    return _walk(exchanges, notices=True)[1]


def analyse(exchanges: Sequence[Exchange]) -> tuple[dict[str, Thread], dict[str, list[Notice]]]:
    """`threads` and `history_notices` in one pass over the exchanges."""
    return _walk(exchanges, notices=True)


def _walk(exchanges: Sequence[Exchange], *, notices: bool) -> tuple[dict[str, Thread], dict[str, list[Notice]]]:
    walk = Walk(notices=notices, texts=True)  # the exchanges hold their messages' text anyway
    found_threads: dict[str, Thread] = {}
    found_notices: dict[str, list[Notice]] = {}
    for exchange in ordered(exchanges):
        step = walk.add(exchange, request_messages(exchange))
        found_threads[exchange.id] = step.thread
        if notices:
            found_notices[exchange.id] = step.notices
    return found_threads, found_notices


def session_identity(exchange: Exchange) -> tuple[str | None, tuple[str, ...]]:
    """Where a request went and as whom: its host (and port), and the fingerprints of its
    credentials (API key headers, `Authorization`, a `key` in the query) as redaction writes
    them (`<redacted:…>`, the same whether the capture was redacted or not). Cookies are left
    out: a browser's change on every page. Two exchanges of one conversation share it."""
    request = exchange.request
    if request is None:
        return None, ()
    url = request.url or ""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a broken IPv6 bracket or port
        parts, host = None, url.split("/")[2] if url.count("/") >= 2 else url
    credentials = [
        redact_header(name, value)
        for name, value in request.headers
        if value and is_secret_header(name) and name.lower() not in ("cookie", "set-cookie")
    ]
    if parts is not None and parts.query:
        credentials += [redact_text(f"?{pair}") for pair in parts.query.split("&") if pair.lower().startswith("key=")]
    fingerprints = sorted({found for value in credentials for found in PLACEHOLDER.findall(value)})
    return host.lower() or None, tuple(fingerprints)


# -- messages -------------------------------------------------------------------------------


class _Call(NamedTuple):
    id: str | None
    name: str | None
    arguments: str


class Message(NamedTuple):
    """A message reduced to what a client keeps when it resends it."""

    role: str
    text: str
    others: tuple[str, ...]
    calls: tuple[_Call, ...]
    function_call: _Call | None
    tool_call_id: str | None


def _canonical(value: Any) -> str:
    return dumps_exact(value, sort_keys=True)


def _arguments(arguments: Any) -> str:
    """Tool call arguments as compared: parsed and re-serialised when they are JSON."""
    if isinstance(arguments, str):
        try:
            return _canonical(orjson.loads(arguments))
        except orjson.JSONDecodeError:
            return arguments.strip()
    return "" if arguments is None else _canonical(arguments)


def _call(call: Any) -> _Call:
    if not isinstance(call, dict):
        return _Call(None, None, _canonical(call))
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    name = function.get("name")
    return _Call(
        call.get("id") if isinstance(call.get("id"), str) else None,
        name if isinstance(name, str) else None,
        _arguments(function.get("arguments")),
    )


def _content(content: Any) -> tuple[str, tuple[str, ...]]:
    """The text of a message's content, and its other parts."""
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content.strip(), ()
    if not isinstance(content, list):
        return "", (_canonical(content),)
    texts, others = [], []
    for part in content:
        kind = part.get("type", "text") if isinstance(part, dict) else None
        if isinstance(part, str):
            texts.append(part)
        elif not isinstance(kind, str):  # not an object, or a type that is not a name: compared whole
            others.append(_canonical(part))
        elif kind in _REASONING_PARTS:
            continue
        elif kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            others.append(_canonical(part))
    return "".join(texts).strip(), tuple(others)


def _message(message: dict[str, Any]) -> Message:
    role, content = message.get("role"), message.get("content")
    if len(message) == 2 and type(content) is str and type(role) is str:  # most messages: role and text
        return Message(role.lower(), content.strip(), (), (), None, None)
    body, others = _content(content)
    calls = message.get("tool_calls")
    function_call = message.get("function_call")
    tool_call_id = message.get("tool_call_id")
    return Message(
        role.lower() if isinstance(role, str) else "",
        body,
        others,
        tuple(_call(c) for c in calls) if isinstance(calls, list) else (),
        _call(function_call) if isinstance(function_call, dict) else None,
        tool_call_id if isinstance(tool_call_id, str) else None,
    )


@dataclass(slots=True)
class _Reply:
    """One choice of what an exchange received, in the forms a client may resend it."""

    message: Message
    variants: list[Message]
    reasoning: str | None


def _digest(role: str, text: str) -> bytes:
    """A message known by its role and text: the first 16 bytes of their SHA-256, so a walk over
    gigabytes of histories keeps 16 bytes a message, not its text. Two different messages share
    a digest with odds of about 2**-128 a pair. The role is prefixed by its length, so no two
    pairs read alike. (SHA-256 over BLAKE2b: it runs on the CPU's SHA instructions, 1.5 times
    as fast on 1.5 kB messages here.)"""
    return hashlib.sha256(f"{len(role)}:{role}{text}".encode("utf-8", "surrogatepass")).digest()[:16]


def key_of(message: Message) -> bytes:
    """What the walk knows a normalised message by (`Walk.intern_key`): `_digest` of it: of its role and text when that is all it has (most
    messages), else of its `repr` (which starts with a letter where the other starts with a
    digit, so the two never read alike)."""
    if not (message.others or message.calls or message.function_call or message.tool_call_id):
        return _digest(message.role, message.text)
    return hashlib.sha256(repr(message).encode("utf-8", "surrogatepass")).digest()[:16]


def normalised(message: dict[str, Any]) -> Message:
    """A chat message as the threads compare it (see the module docstring): equal for two
    messages the threads take for the same, whoever normalises them (a worker, the walk)."""
    return _message(message)


def _replies(exchange: Exchange, wires: list[dict[str, Any]] | None = None) -> list[_Reply]:
    """What `exchange` received; `wires`: its reconstruction's `to_openai()` choices, when at hand."""
    rec = exchange.reconstruct()
    replies = []
    if wires is None:
        wires = rec.to_openai()["choices"] if rec.choices else []
    for choice, wire in zip(rec.choices, wires, strict=True):
        message = _message({**wire["message"], "role": wire["message"].get("role") or "assistant"})
        variants = [message]
        if choice.think is not None:
            variants.append(message._replace(text=(choice.answer or "").strip()))
        if not message.text and choice.refusal:
            variants.append(message._replace(text=choice.refusal.strip()))
        reasoning = choice.reasoning.strip() if choice.reasoning else None
        replies.append(_Reply(message, variants, reasoning))
    return replies


def _without_reasoning(text: str, reasoning: str | None) -> str | None:
    """`text` with `reasoning` (and any think tags around it) taken out, or None when it is not in it."""
    if not reasoning or reasoning not in text:
        return None
    rest = text.replace(reasoning, "", 1)
    return rest.replace("<think>", "", 1).replace("</think>", "", 1).strip()


def _all_calls(message: Message) -> tuple[_Call, ...]:
    return (*message.calls, message.function_call) if message.function_call else message.calls


def _calls_match(sent: tuple[_Call, ...], received: tuple[_Call, ...]) -> bool:
    return len(sent) == len(received) and all(
        s.name == r.name and s.arguments == r.arguments and s.id in (None, r.id)
        for s, r in zip(sent, received, strict=True)
    )


def _matches(sent: Message, reply: _Reply) -> bool:
    """Whether `sent` is `reply` as received, but for dropped call ids or added reasoning."""
    received = reply.message
    if sent.others != received.others or not _calls_match(_all_calls(sent), _all_calls(received)):
        return False
    texts = {variant.text for variant in reply.variants}
    return sent.text in texts or _without_reasoning(sent.text, reply.reasoning) in texts


def _text_difference(sent: str, received: str) -> str:
    if received and sent.startswith(received):
        return f"it adds {len(sent) - len(received):,} characters after the {len(received):,} received"
    if sent and received.startswith(sent):
        return f"it keeps the first {len(sent):,} of {len(received):,} characters"
    if received and sent.endswith(received):
        return f"it adds {len(sent) - len(received):,} characters before the {len(received):,} received"
    if received and received in sent:
        return f"it adds {len(sent) - len(received):,} characters around the {len(received):,} received"
    if sent and sent in received:
        return f"it keeps {len(sent):,} of {len(received):,} characters, cut from the middle"
    same = len(_common_start(sent, received))
    return (
        f"its text differs from character {same + 1:,} on ({len(sent):,} characters sent, {len(received):,} received)"
    )


def _difference(sent: Message, received: Message) -> str:
    """How `sent` differs from `received`, briefly."""
    found = []
    if sent.text != received.text:
        found.append(_text_difference(sent.text, received.text))
    if len(sent.calls) != len(received.calls):
        found.append(f"it has {len(sent.calls)} tool calls, {len(received.calls)} received")
    else:
        for number, (s, r) in enumerate(zip(sent.calls, received.calls, strict=True), 1):
            what = [
                field
                for field, a, b in (
                    ("name", s.name, r.name),
                    ("arguments", s.arguments, r.arguments),
                    ("id", s.id, r.id),
                )
                if a != b and not (field == "id" and a is None)
            ]
            if what:
                found.append(f"tool call {number}'s {' and '.join(what)} {'differ' if len(what) > 1 else 'differs'}")
    if sent.function_call != received.function_call:
        found.append("its function call differs")
    if sent.others != received.others:
        found.append("its other content parts differ")
    return "; ".join(found) or "it differs"


# -- the walk -------------------------------------------------------------------------------


def ordered(exchanges: Sequence[Exchange]) -> list[Exchange]:
    """The exchanges in the order the threads take them: by start time, then those without one."""
    return [exchanges[at] for at in order_of([x.started_at for x in exchanges])]


class _Received(NamedTuple):
    """A reasoning an exchange received, as `_ReasoningFinder` knows it."""

    length: int
    text: str | None  # a reasoning shorter than `_REASONING_HEAD` characters; else None and:
    head: bytes  # `_digest` of its first `_REASONING_HEAD` characters
    whole: bytes  # `_digest` of it whole
    source: str  # the exchange that received it


class _ReasoningFinder:
    """Finds reasoning resent as content, remembering each message it judged (by number), so
    a message keeps its verdict in every later request that resends it."""

    def __init__(self) -> None:
        # The first characters of a received reasoning -> what it is known by, in order: a short
        # reasoning itself, a longer one by digests (of its start and of it whole), so that the
        # walk's memory does not grow with the reasoning received, the longest texts of all.
        self.received: dict[str, list[_Received]] = {}
        self.verdicts: dict[int, tuple[str, int] | None] = {}  # by message number

    def add(self, reasoning: str, source: str) -> None:
        """`source` received `reasoning` (stripped)."""
        if len(reasoning) >= _REASONING_MIN:
            if len(reasoning) < _REASONING_HEAD:
                known = _Received(len(reasoning), reasoning, b"", b"", source)
            else:
                head, whole = _digest("", reasoning[:_REASONING_HEAD]), _digest("", reasoning)
                known = _Received(len(reasoning), None, head, whole, source)
            self.received.setdefault(reasoning[:_REASONING_MIN], []).append(known)

    def _start(self, text: str) -> _Received | None:
        """The latest reasoning received that `text` starts with, if any: a long one's whole
        digest is worked out only when its start's matches (most reasoning opens alike)."""
        head = None
        for known in reversed(self.received.get(text[:_REASONING_MIN], ())):
            if known.text is not None:
                if text.startswith(known.text):
                    return known
            elif len(text) >= known.length:
                head = head or _digest("", text[:_REASONING_HEAD])
                if known.head == head and _digest("", text[: known.length]) == known.whole:
                    return known
        return None

    def judge(self, text: str, number: int, parent_reasoning: list[tuple[str, str]]) -> tuple[str, int] | None:
        """What says message `text` carries reasoning, and how many characters of it, or None.
        `parent_reasoning`: what the exchange it continues received, looked for anywhere in it."""
        verdict = None
        think, answer = split_think(text)
        start = self._start(text)
        if start is not None:
            inside = [(start.length, start.source)]
        else:
            inside = [(len(reasoning), source) for reasoning, source in parent_reasoning if reasoning in text]
        if think is not None:
            verdict = "opens with a <think> block", len(text) - len((answer or "").strip())
        elif inside:
            length, source = inside[0]
            verdict = f"carries the reasoning {source} received", length
        elif opening := _REASONING_OPENING.match(text):
            words = " ".join(opening.group().split())
            verdict = f"reads as reasoning (it opens {words!r}; no earlier exchange received it)", len(text)
        self.verdicts[number] = verdict
        return verdict

    def notice(
        self,
        assistant: Mapping[int, Message],
        numbers: list[int],
        replied: list[int],
        parent_reasoning: dict[int, list[tuple[str, str]]],
    ) -> Notice | None:
        """The `reasoning_in_history` notice for a history (`replied`: the positions of its
        assistant messages; `assistant`: those messages normalised, by number), or None."""
        found = []
        for at in replied:
            number, reasoning = numbers[at], parent_reasoning.get(at + 1, [])
            if number in self.verdicts and (self.verdicts[number] or not reasoning):
                verdict = self.verdicts[number]  # a message judged before (its text is needed only the first time)
            else:
                text = assistant[number].text
                verdict = self.judge(text, number, reasoning) if text else None
            if verdict is not None:
                found.append((f"message {at + 1} {verdict[0]}", verdict[1]))
        if not found:
            return None
        says = "; ".join(f"{what}: {size:,} characters" for what, size in found)
        if len(found) > 1:
            says = f"{sum(size for _, size in found):,} characters in all: {says}"
        return Notice("reasoning_in_history", f"the history resends reasoning as content, inflating the prompt; {says}")


class Threadable(NamedTuple):
    """What the walk needs of one exchange besides its history: small, and built wherever the
    exchange was reconstructed (a worker process, a Spark executor), so the exchange itself
    need not travel to the walk."""

    id: str
    session: tuple[str | None, tuple[str, ...]]  # `session_identity`
    replies: list[_Reply]


def threadable(exchange: Exchange, wires: list[dict[str, Any]] | None = None) -> Threadable:
    """`exchange` as the walk needs it; `wires`: its reconstruction's `to_openai()` choices, when at hand."""
    return Threadable(exchange.id, session_identity(exchange), _replies(exchange, wires))


def order_of(started: Sequence[datetime | None]) -> list[int]:
    """The positions of exchanges started at `started` in the order the threads take them:
    by start time (ties in the order given), then those without one (see `ordered`)."""

    def when(at: int) -> datetime:
        value = started[at]
        assert value is not None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    timed = sorted((at for at, value in enumerate(started) if value is not None), key=when)
    return timed + [at for at, value in enumerate(started) if value is None]


class Step(NamedTuple):
    """What `Walk.add` found for one exchange."""

    thread: Thread
    # Its `reasoning_in_history` and `history_differs` notices (none unless the walk looks for them).
    notices: list[Notice]
    # The number of each message of its history (`Walk.number`).
    numbers: list[int]


class Walk:
    """The threads of exchanges given one at a time in `ordered` order: each exchange's thread
    (and notices) is known as soon as it is added, from the exchanges added before it.

    A message is given a number (equal numbers: messages the threads take for the same); a
    history is a path of numbers through a trie, so every prefix of every history is a number
    too, and each lookup below is a dict access. The walk keeps no message's text: a digest and
    a role for each, so a command reading gigabytes one exchange at a time can thread them in
    a few hundred bytes a message. `texts=True` trades that for speed where the caller holds
    the texts anyway: each message resent is then found by its text, not digested again."""

    def __init__(
        self, *, notices: bool = True, texts: bool = False, past: MutableMapping[int, Any] | None = None
    ) -> None:
        self.notices = notices
        # As added: an exchange's position is its index. What each received is kept here, or with
        # `past` (a `spill.Spill`) there, read again only for a loose parent.
        self._ids: list[str] = []
        self._replies: list[list[_Reply]] = []
        self._past = past
        # A message is known by a digest of its normal form (`key_of`), not by its text: the walk
        # keeps its number and role only. The assistant messages of a history, the only ones it
        # reads (for a loose parent, or reasoning), are the caller's to give (`add_numbered`).
        self._numbers: dict[bytes, int] = {}
        self._roles: list[str] = []  # by number
        # With `texts`, for a caller that holds every message's text anyway (the exchanges in
        # memory): the numbers of the messages met, by their text (a role-and-text message by
        # those two as sent; another by its normal form), so a message resent is neither
        # normalised nor digested again, and the assistant messages normalised, by number.
        self._known: dict[tuple[Any, ...], int] | None = {} if texts else None
        self._assistant: dict[int, Message] = {}
        # (prefix, message number) -> the prefix one message longer; a session's empty history
        # is its own prefix, so histories sent to two hosts, or as two identities, never meet.
        self._prefixes: dict[tuple[int, int], int] = {}
        self._sessions: dict[tuple[str | None, tuple[str, ...]], int] = {}
        # Prefix of (history + a reply) -> exchanges that received that reply to that history.
        self._continuations: dict[int, list[int]] = {}
        # Prefix of a whole history -> exchanges that sent it.
        self._histories: dict[int, list[int]] = {}
        # Prefix of a root's history up to an assistant message -> the first such root.
        self._root_starts: dict[int, int] = {}
        self._reasoning = _ReasoningFinder()
        self._new_prefix = itertools.count().__next__
        self._conversation_of: list[str] = []
        self._children: list[int] = []
        self._conversations = 0

    def number(self, wire: dict[str, Any]) -> int:
        """The number of a chat message as the threads compare it: clients that re-serialise a
        message (whitespace at the ends, `null` for no content, reasoning fields) keep its number."""
        known = self._known
        if known is None:
            return self.intern(_message(wire))
        role, content = wire.get("role"), wire.get("content")
        if len(wire) == 2 and type(role) is str and type(content) is str:  # most messages: role and text
            key: tuple[Any, ...] = (role, content)
            found = known.get(key)
            if found is None:
                found = known[key] = self._kept(_message(wire))
            return found
        message = _message(wire)  # a Message: six fields, so never equal to a pair above
        found = known.get(message)
        if found is None:
            found = known[message] = self._kept(message)
        return found

    def _kept(self, message: Message) -> int:
        """`intern`, keeping the message if it is an assistant's (`texts`)."""
        found = self.intern(message)
        if message.role == "assistant":
            self._assistant[found] = message
        return found

    def intern(self, message: Message) -> int:
        """The number of a message already `normalised`."""
        return self.intern_key(key_of(message), message.role)

    def intern_key(self, key: bytes, role: str) -> int:
        """The number of a message known by its `key_of` and role (made where it was read: a worker)."""
        found = self._numbers.get(key)
        if found is None:
            found = self._numbers[key] = len(self._roles)
            self._roles.append(sys.intern(role))  # a few roles, each held once
        return found

    def _prefix(self, prefix: int, number: int) -> int:
        found = self._prefixes.get((prefix, number))
        if found is None:
            found = self._prefixes[prefix, number] = self._new_prefix()
        return found

    def _session(self, identity: tuple[str | None, tuple[str, ...]]) -> int:
        """The prefix that starts every history sent by the session `identity` (`session_identity`)."""
        found = self._sessions.get(identity)
        if found is None:
            found = self._sessions[identity] = self._new_prefix()
        return found

    def add(self, exchange: Exchange | Threadable, messages: list[dict[str, Any]]) -> Step:
        """Thread `exchange`, whose request sent `messages` (`request_messages`), after every
        exchange added before it."""
        item = exchange if isinstance(exchange, Threadable) else threadable(exchange)
        numbers = [self.number(wire) for wire in messages]
        return self.add_numbered(item, numbers, self._assistant if self._known is not None else _Normalised(numbers, messages))  # fmt: skip

    def _received(self, position: int) -> list[_Reply]:
        """What the exchange added at `position` received."""
        if self._past is None:
            return self._replies[position]
        return self._past.get(position, [])

    def add_numbered(self, exchange: Threadable, numbers: list[int], assistant: Mapping[int, Message]) -> Step:
        """`add` for an exchange whose history is given by its messages' numbers (`intern`);
        `assistant`: at least its assistant messages normalised, by number (the walk reads
        one only for a loose parent, or the first time it judges it for reasoning)."""
        position = len(self._ids)
        self._ids.append(exchange.id)
        if self._past is None:
            self._replies.append(exchange.replies)
        elif exchange.replies:
            self._past[position] = exchange.replies
        replies = exchange.replies
        prefixes = [prefix := self._session(exchange.session)]
        for number in numbers:
            prefixes.append(prefix := self._prefix(prefix, number))
        roles = [self._roles[n] for n in numbers]
        replied = [at for at, role in enumerate(roles) if role == "assistant"]  # positions of assistant messages
        exchange_notices: list[Notice] = []
        # Position (from 1) of a message -> the reasoning received by the exchange it continues.
        parent_reasoning: dict[int, list[tuple[str, str]]] = {}

        parent: int | None = None
        for at in reversed(replied):
            exact = self._continuations.get(prefixes[at + 1])
            if exact:
                parent = exact[-1]
                break
            candidates = self._histories.get(prefixes[at])
            if candidates:
                parent, differs = _loose_parent(self._ids, self._received, candidates, assistant[numbers[at]])
                if self.notices:
                    if differs:
                        exchange_notices.append(Notice("history_differs", f"message {at + 1} {differs}"))
                    found = [(r.reasoning, self._ids[parent]) for r in self._received(parent) if r.reasoning]
                    parent_reasoning[at + 1] = found
                break

        twins = self._histories.get(prefixes[-1]) if numbers else None
        branch: str | None = None
        if twins:
            branch = "regeneration"
        elif parent is not None and self._children[parent]:
            branch = "edit"

        conversation: str | None = None
        if parent is not None:
            conversation = self._conversation_of[parent]
        elif twins:
            conversation = self._conversation_of[twins[0]]
        else:
            for at in reversed(replied):
                if (root := self._root_starts.get(prefixes[at + 1])) is not None:
                    conversation, branch = self._conversation_of[root], "edit"
                    break
        if conversation is None:
            self._conversations += 1
            conversation = f"c{self._conversations}"

        thread = Thread(
            conversation=conversation,
            turn=max(1, roles.count("user")),
            parent=self._ids[parent] if parent is not None else None,
            branch=branch,
        )
        if self.notices:
            resent = self._reasoning.notice(assistant, numbers, replied, parent_reasoning)
            exchange_notices = [*([resent] if resent else []), *exchange_notices]

        # What later exchanges look up.
        self._conversation_of.append(conversation)
        self._children.append(0)
        if parent is not None:
            self._children[parent] += 1
        if numbers:
            self._histories.setdefault(prefixes[-1], []).append(position)
            if parent is None:
                for at in replied:
                    self._root_starts.setdefault(prefixes[at + 1], position)
            received = set()
            for reply in replies:
                for variant in reply.variants:
                    received.add(self._prefix(prefixes[-1], self.intern(variant)))
                if self.notices and reply.reasoning:
                    self._reasoning.add(reply.reasoning, exchange.id)
            for key in received:
                self._continuations.setdefault(key, []).append(position)
        return Step(thread, exchange_notices, numbers)


class _Normalised(Mapping[int, Message]):
    """The messages of one request normalised by number, each only when asked for."""

    def __init__(self, numbers: list[int], messages: list[dict[str, Any]]) -> None:
        self._numbers, self._messages = numbers, messages  # seldom read: nothing is made until then

    def __getitem__(self, number: int) -> Message:
        try:
            return _message(self._messages[self._numbers.index(number)])
        except ValueError:
            raise KeyError(number) from None

    def __iter__(self) -> Iterator[int]:
        return iter(dict.fromkeys(self._numbers))

    def __len__(self) -> int:
        return len(set(self._numbers))


class Deferred:
    """The threads of exchanges read one at a time in any order (a stream of captures), found
    when all are read: each is kept as the walk needs it (its start, its session and replies,
    its messages' numbers) and its assistant messages in a temporary file (`spill.Spill`), so
    the memory held is a few hundred bytes a message, not the histories' text.

        later = Deferred()
        for x in analyzer.stream(path):
            later.add(x)                      # reconstructs x
        for exchange_id, step in later.steps():
            ...
    """

    def __init__(self, *, notices: bool = False) -> None:
        self.walk = Walk(notices=notices)
        self._assistant = Spill()
        self._sent: list[tuple[datetime | None, Threadable, list[int]]] = []

    def add(self, exchange: Exchange) -> None:
        """Keep `exchange` (reconstructed) as the walk will need it."""
        numbers = []
        for wire in request_messages(exchange):
            message = _message(wire)  # normalised once, for its number and, an assistant's, to keep
            numbers.append(number := self.walk.intern(message))
            if message.role == "assistant" and number not in self._assistant:
                self._assistant[number] = message
        self._sent.append((exchange.started_at, threadable(exchange), numbers))

    def __len__(self) -> int:
        return len(self._sent)

    def steps(self) -> Iterator[tuple[str, Step]]:
        """Each exchange's id and `Step`, in the threads' order (`ordered`); the temporary file goes after the last."""
        with self._assistant:
            for at in order_of([started for started, _, _ in self._sent]):
                _, item, numbers = self._sent[at]
                yield item.id, self.walk.add_numbered(item, numbers, self._assistant)


def _loose_parent(
    ids: Sequence[str], received: Callable[[int], list[_Reply]], candidates: list[int], sent: Message
) -> tuple[int, str | None]:
    """Of exchanges with the same history (`ids`: every exchange added's), the one `sent` (the
    next message) continues, and how it differs from what that one received (`received(position)`;
    None when only by what `_matches` allows)."""
    recent = [(candidate, received(candidate)) for candidate in reversed(candidates[-_LOOSE_CANDIDATES:])]
    for candidate, replies in recent:
        if any(_matches(sent, reply) for reply in replies):
            return candidate, None
    answered = [(candidate, reply) for candidate, replies in recent for reply in replies]
    if not answered:
        return candidates[-1], f"was never received: {ids[candidates[-1]]} got no reply"
    # The reply the message starts most like (the latest of equals): the one the client changed.
    candidate, reply = max(answered, key=lambda found: len(_common_start(sent.text, found[1].message.text)))
    return candidate, f"is not what {ids[candidate]} received: {_difference(sent, reply.message)}"


def _common_start(a: str, b: str) -> str:
    n = next((n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]
