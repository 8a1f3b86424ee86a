"""Conversations as a person reads them: each exchange's new messages and reply, in order.

Chat clients resend the whole history every turn; `analyzer.threads` finds which exchange
continues which. Here each conversation becomes a list of turns, one per exchange, where a
turn holds only the messages that exchange sent first (a message resent later is not
repeated; messages compare as the threads compare them, so a client re-serialising its
history does not make them new) and the reply it received. The frames
(`frames.messages`) and the transcript exports both read conversations this way.

    from analyzer.conversations import conversations, turns
    for conversation in conversations(xs):
        conversation.id, conversation.title, [turn.exchange.id for turn in conversation.turns]
    for turn in turns(xs):      # the same turns one at a time, in order, none kept
        turn.thread.conversation, turn.new, turn.reply

`turns` and `conversations` also take exchanges already `read` (their requests' messages
and tools parsed): the transcript exports read each exchange as it streams in and keep
only that, not its bodies.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from analyzer import threads
from analyzer.model import Exchange, Reconstruction
from analyzer.protocols import chunk_parts, request_messages, request_tools
from analyzer.protocols.events import content_text

TITLE_CHARS = 80


@dataclass(slots=True)
class Turn:
    """One exchange in its conversation."""

    exchange: Exchange
    rec: Reconstruction
    thread: threads.Thread | None
    # The whole history the request sent, as chat messages, and for each message the id of
    # the exchange of the conversation that sent it first (this one's, when it is new).
    history: list[dict[str, Any]]
    sent_by: list[str]
    # Every choice of the reply as an assistant message (chat/completions' shape).
    replies: list[dict[str, Any]]
    # The tools the request offered (`request_tools`).
    tools: list[dict[str, Any]] = field(default_factory=list)
    # (arrival ms, generated characters so far) per chunk, when it was worked out before the
    # chunks were let go (`read(light=True)`); None: from `rec.chunks` (`arrival_curve`).
    curve: list[tuple[float, int]] | None = None

    @property
    def branch(self) -> str | None:
        return self.thread.branch if self.thread else None

    @property
    def reply(self) -> dict[str, Any] | None:
        """The first choice as an assistant message, or None when there was no reply."""
        return self.replies[0] if self.replies else None

    @property
    def new(self) -> list[int]:
        """Positions in `history` of the messages this exchange sent first."""
        return [n for n, sender in enumerate(self.sent_by) if sender == self.exchange.id]


@dataclass(slots=True)
class Conversation:
    id: str
    turns: list[Turn] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The first user message, shortened: what a chat app would call the conversation."""
        for turn in self.turns:
            for message in turn.history:
                if message.get("role") == "user":
                    text = " ".join(message_text(message).split())
                    if text:
                        return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"
        return self.id

    @property
    def started_at(self) -> datetime | None:
        return next((turn.exchange.started_at for turn in self.turns if turn.exchange.started_at), None)

    @property
    def models(self) -> list[str]:
        found: dict[str, None] = {}
        for turn in self.turns:
            model = turn.rec.served_model or turn.rec.requested_model
            if model:
                found[model] = None
        return list(found)

    def leaf(self) -> Turn | None:
        """The latest turn that got a reply: the end of the branch the user last saw."""
        return next((turn for turn in reversed(self.turns) if turn.reply is not None), None)


def message_text(message: dict[str, Any]) -> str:
    """A chat message's content as text: a string, or the text of its parts."""
    return content_text(message.get("content"))


class Read(NamedTuple):
    """An exchange with its request read, as `turns` takes it (see `read`)."""

    exchange: Exchange
    history: list[dict[str, Any]]  # `request_messages`
    tools: list[dict[str, Any]]  # `request_tools`
    curve: list[tuple[float, int]] | None = None  # `Turn.curve`


def read(exchange: Exchange, same: dict[tuple[str, str], dict[str, Any]] | None = None, *, light: bool = False) -> Read:
    """`exchange` with its request's messages and tools parsed. With `same` (kept from one
    call to the next), a message of a role and a text alone that an earlier request sent is
    that request's object, so histories resent with every request take their text once.
    With `light`, the exchange is reconstructed and its arrival curve worked out, and the
    `Read` holds a copy of it without what turns and transcripts no longer need: its bodies,
    raw record and stream chunks. So many can be held where their input could not."""
    body = exchange.request.json() if exchange.request else None
    history = request_messages(exchange, body)
    if same is not None:
        history = [_same(message, same) for message in history]
    found = Read(exchange, history, request_tools(exchange, body))
    if not light:
        return found
    rec = exchange.reconstruct()
    kept = copy.copy(exchange)  # a tenth of what dataclasses.replace takes for its 16 fields
    if exchange.request:
        kept.request = dataclasses.replace(exchange.request, body=None)
    if exchange.response:
        kept.response = dataclasses.replace(exchange.response, body=b"", chunks=None)
    kept.raw = b""
    kept._reconstruction = msgspec.structs.replace(rec, chunks=[])
    return found._replace(exchange=kept, curve=arrival_curve(rec))


def arrival_curve(rec: Reconstruction) -> list[tuple[float, int]]:
    """(arrival ms, generated characters so far) per stream chunk: none unless at least two
    chunks added text, and every chunk's arrival is known."""
    points: list[tuple[float, int]] = []
    total = 0
    for chunk in rec.chunks:
        if chunk.t_ms is None:
            return []
        try:
            parts = chunk_parts(rec, chunk)
        except AttributeError:  # a payload only the lenient path could read
            continue
        grown = sum(len(p.text) for p in parts if p.generated)
        if grown:
            total += grown
            points.append((chunk.t_ms, total))
    return points if len(points) > 1 else []


def _same(message: dict[str, Any], same: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    role, content = message.get("role"), message.get("content")
    if len(message) == 2 and type(role) is str and type(content) is str:
        return same.setdefault((role, content), message)
    return message


def conversations(
    xs: Iterable[Exchange | Read], thread_of: dict[str, threads.Thread] | None = None
) -> list[Conversation]:
    """The exchanges grouped into conversations (in the order they first appear), each
    exchange a turn holding the messages it sent first and its reply."""
    found: dict[str, Conversation] = {}
    for turn in turns(xs, thread_of):
        key = turn.thread.conversation if turn.thread else turn.exchange.id
        conversation = found.get(key)
        if conversation is None:
            conversation = found[key] = Conversation(key)
        if turn.tools:
            conversation.tools = turn.tools
        conversation.turns.append(turn)
    return list(found.values())


def turns(xs: Iterable[Exchange | Read], thread_of: dict[str, threads.Thread] | None = None) -> Iterator[Turn]:
    """Each exchange as a turn of its conversation, in the order the threads take them
    (`threads.ordered`), one at a time: nothing is kept of a turn once the next is made but
    what finding the next ones needs. `thread_of`: the threads, when already found."""
    items = list(xs)
    walk = threads.Walk(notices=False, texts=True)  # the items hold their histories
    first: dict[tuple[str, int, int], str] = {}  # (conversation, position, message number) → first sender
    for at in threads.order_of([(item.exchange if type(item) is Read else item).started_at for item in items]):
        item = items[at]
        exchange, history, tools, curve = item if type(item) is Read else read(item)
        step = walk.add(exchange, history)
        thread = thread_of.get(exchange.id) if thread_of is not None else step.thread
        key = thread.conversation if thread else exchange.id
        sent_by = [first.setdefault((key, position, number), exchange.id) for position, number in enumerate(step.numbers)]  # fmt: skip
        rec = exchange.reconstruct()
        replies = [choice["message"] for choice in rec.to_openai()["choices"]] if rec.choices else []
        if replies:  # a reply the client sends back is not new in the next request
            first.setdefault((key, len(history), walk.number(replies[0])), exchange.id)
        yield Turn(exchange, rec, thread, history, sent_by, replies, tools, curve)
