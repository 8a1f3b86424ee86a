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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analyzer import threads
from analyzer.model import Exchange, Reconstruction
from analyzer.protocols import request_messages, request_tools
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


def conversations(xs: Iterable[Exchange], thread_of: dict[str, threads.Thread] | None = None) -> list[Conversation]:
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


def turns(xs: Iterable[Exchange], thread_of: dict[str, threads.Thread] | None = None) -> Iterator[Turn]:
    """Each exchange as a turn of its conversation, in the order the threads take them
    (`threads.ordered`), one at a time: nothing is kept of a turn once the next is made but
    what finding the next ones needs. `thread_of`: the threads, when already found."""
    xs = list(xs)
    walk = threads.Walk(notices=False)
    first: dict[tuple[str, int, int], str] = {}  # (conversation, position, message number) → first sender
    for exchange in threads.ordered(xs):
        body = exchange.request.json() if exchange.request else None
        history = request_messages(exchange, body)
        step = walk.add(exchange, history)
        thread = thread_of.get(exchange.id) if thread_of is not None else step.thread
        key = thread.conversation if thread else exchange.id
        sent_by = [first.setdefault((key, position, number), exchange.id) for position, number in enumerate(step.numbers)]  # fmt: skip
        rec = exchange.reconstruct()
        replies = [choice["message"] for choice in rec.to_openai()["choices"]] if rec.choices else []
        if replies:  # a reply the client sends back is not new in the next request
            first.setdefault((key, len(history), walk.number(replies[0])), exchange.id)
        yield Turn(exchange, rec, thread, history, sent_by, replies, request_tools(exchange, body))
