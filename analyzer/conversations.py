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
from collections import Counter
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

    def add(self, turn: Turn) -> None:
        """`turn` as the conversation's next (its tools, when it offered any, are the conversation's)."""
        if turn.tools:
            self.tools = turn.tools
        self.turns.append(turn)

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
        conversation.add(turn)
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
        rec = exchange.reconstruct()
        replies = _replies(rec)
        sent_by = _senders(first, key, exchange.id, step.numbers, walk.number(replies[0]) if replies else None)
        yield Turn(exchange, rec, thread, history, sent_by, replies, tools, curve)


def _replies(rec: Reconstruction) -> list[dict[str, Any]]:
    """Every choice of a reply as an assistant message."""
    return [choice["message"] for choice in rec.to_openai()["choices"]] if rec.choices else []


def _senders(
    first: dict[tuple[str, int, int], str], key: str, exchange_id: str, numbers: list[int], reply: int | None
) -> list[str]:
    """For each message of a history (its messages' `numbers`) sent by `exchange_id` in
    conversation `key`, the exchange that sent it first there; `first` (conversation,
    position, message number) → that exchange, kept from one exchange to the next in the
    threads' order, also learns the reply (numbered) as sent at the position after them:
    a reply the client sends back is not new in the next request."""
    sent_by = [first.setdefault((key, position, number), exchange_id) for position, number in enumerate(numbers)]
    if reply is not None:
        first.setdefault((key, len(numbers), reply), exchange_id)
    return sent_by


# -- in two passes ----------------------------------------------------------------------------
#
# For exchanges too many to hold (the transcript exports of a stream of captures), the
# conversations are found in two passes over the input: `plan` threads every exchange,
# holding a few hundred bytes a message (`threads.Deferred`), and `gather` reads them again
# and gives each conversation as soon as its last exchange is read, holding only the
# conversations still open.


class Plan(NamedTuple):
    """What the first pass (`plan`) found of one exchange."""

    place: int  # in the threads' order
    started_at: datetime | None  # to know it again in the second pass
    thread: threads.Thread
    sent_by: list[str]  # as `Turn.sent_by`


def plan(exchanges: Iterable[Exchange], progress: bool | None = None) -> dict[str, Plan]:
    """The first of two passes: each exchange's `Plan` by id, as `turns` would find it, from
    exchanges given one at a time in any order (reconstructed as they come), holding what
    threading needs of each (`threads.Deferred`), not the exchanges. A spinner shows while the
    threads are walked (`progress`: as for `ingest.status`)."""
    from analyzer.ingest import status

    later = threads.Deferred()
    started: dict[str, datetime | None] = {}
    replies: dict[str, int] = {}  # each exchange's first reply, numbered as the walk numbers messages
    for exchange in exchanges:
        later.add(exchange)
        started[exchange.id] = exchange.started_at
        wires = _replies(exchange.reconstruct())
        if wires:
            replies[exchange.id] = later.walk.number(wires[0])
    found = {}
    first: dict[tuple[str, int, int], str] = {}
    with status(f"threading {len(later):,} exchange(s) into conversations", progress):
        for place, (exchange_id, step) in enumerate(later.steps()):
            sent_by = _senders(first, step.thread.conversation, exchange_id, step.numbers, replies.pop(exchange_id, None))  # fmt: skip
            found[exchange_id] = Plan(place, started.pop(exchange_id), step.thread, sent_by)
    return found


def gather(items: Iterable[Exchange | Read], planned: dict[str, Plan]) -> Iterator[tuple[int, Conversation]]:
    """The second pass: the conversations of the exchanges `planned` holds (`plan`), each as
    soon as its last exchange comes, with its turns in the threads' order and its place among
    the conversations (`conversations` gives them in this order). `items`: the exchanges
    again, in any order (each `read` here, light, and held only until its conversation is
    given), or as `read` in the first pass. An exchange `planned` does not hold is passed over;
    one that is not what the first pass read (a file changed in between) is a `ValueError`."""
    left = Counter(found.thread.conversation for found in planned.values())
    held: dict[str, list[tuple[int, Turn]]] = {}
    same: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}  # `read`'s, per conversation still open
    for item in items:
        exchange = item.exchange if type(item) is Read else item
        found = planned.get(exchange.id)
        if found is None:
            continue
        if exchange.started_at != found.started_at:
            raise ValueError(f"{exchange.id} is not the exchange read before: did its file change meanwhile?")
        key = found.thread.conversation
        exchange, history, tools, curve = item if type(item) is Read else read(item, same.setdefault(key, {}), light=True)  # fmt: skip
        rec = exchange.reconstruct()
        turn = Turn(exchange, rec, found.thread, history, found.sent_by, _replies(rec), tools, curve)
        held.setdefault(key, []).append((found.place, turn))
        left[key] -= 1
        if not left[key]:
            same.pop(key, None)
            yield _gathered(key, held.pop(key))
    if missing := sum(left.values()):  # of conversations begun, or never seen, this time
        raise ValueError(f"{missing:,} exchange(s) read before were not found again: did a file change meanwhile?")


def _gathered(key: str, turns: list[tuple[int, Turn]]) -> tuple[int, Conversation]:
    turns.sort(key=lambda found: found[0])
    conversation = Conversation(key)
    for _, turn in turns:
        conversation.add(turn)
    return turns[0][0], conversation
