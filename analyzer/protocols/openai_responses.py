"""OpenAI's Responses API (`POST …/v1/responses`), streaming and not.

A stream opens with `response.created` (the response object, `output` empty) and ends with
`response.completed`, `response.incomplete` or `response.failed` (the whole response, with
usage); an `error` event can come first. Between them, output items are announced
(`response.output_item.added`), filled by deltas addressed by `output_index` and
`content_index` (`response.output_text.delta`, `response.refusal.delta`,
`response.function_call_arguments.delta`, `response.custom_tool_call_input.delta`,
`response.reasoning_summary_text.delta`, `response.reasoning_text.delta`, annotations)
and closed (`….done`, `response.output_item.done`, which carry the whole value).

The deltas are folded into a snapshot of the response. The terminal event's response is
the provider's own final word and becomes `to_native()` when it has the output; where
its text differs from what the deltas added up to, a warning says so. Onto the chat
shape: message text is the content, reasoning summaries (or reasoning text) the
reasoning, function and custom tool calls the tool calls, other items (web search, file
search, code interpreter, MCP…) provider extras.

Reference: https://platform.openai.com/docs/api-reference/responses-streaming
"""

from __future__ import annotations

from typing import Any

import orjson

from analyzer.model import Choice, Exchange, Part, Reconstruction
from analyzer.protocols.events import (
    Marks,
    add_chunk,
    as_list,
    as_text,
    content_text,
    ending,
    json_text,
    stream_payloads,
    tool_call,
)
from analyzer.usage import normalise as normalise_usage

PROTOCOL = "openai_responses"
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Delta events: (the item field or the content part field they extend, whether the text is answer text).
_CONTENT_DELTAS = {
    "response.output_text.delta": ("text", True),
    "response.refusal.delta": ("refusal", True),
    "response.reasoning_text.delta": ("text", False),
}
_ITEM_DELTAS = {
    "response.function_call_arguments.delta": "arguments",
    "response.custom_tool_call_input.delta": "input",
    "response.mcp_call_arguments.delta": "arguments",
    "response.code_interpreter_call_code.delta": "code",
}
# Events that carry nothing the snapshot needs (statuses, or a value the deltas gave already).
_QUIET = frozenset(
    {
        "response.in_progress",
        "response.queued",
        "response.content_part.done",
        "response.reasoning_summary_part.done",
        "response.mcp_call_arguments.done",
        "response.code_interpreter_call_code.done",
    }
)


class _Fold:
    def __init__(self, rec: Reconstruction) -> None:
        self.rec = rec
        self.response: dict[str, Any] | None = None
        self.items: dict[int, dict[str, Any]] = {}
        self.terminal: dict[str, Any] | None = None
        self.terminal_type: str | None = None
        # What the deltas alone added up to, by where they went: (output_index, field) or
        # (output_index, field, part index, part field). The `….done` events overwrite the
        # snapshot with the whole value, so it cannot tell whether the deltas agreed.
        self.streamed: dict[tuple[Any, ...], list[str]] = {}
        # The same deltas since the last settle, with the item or part they extend: where →
        # (target, field, its text before them, pieces).
        self.live: dict[tuple[Any, ...], tuple[dict[str, Any], str, str, list[str]]] = {}
        self.earlier: list[dict[str, Any]] = []
        self.unknown: dict[str, int] = {}
        self.marks = Marks()

    def item(self, payload: dict[str, Any], seq: int) -> dict[str, Any] | None:
        index = payload.get("output_index")
        item = self.items.get(index)  # type: ignore[arg-type]
        if item is None:
            self.rec.warn("item_order", f"event {seq + 1}: {payload.get('type')} for output {index!r}, never added")
        return item

    def part(self, payload: dict[str, Any], seq: int, field: str = "content") -> dict[str, Any] | None:
        item = self.item(payload, seq)
        if item is None:
            return None
        index = payload.get("summary_index" if field == "summary" else "content_index")
        parts = item.setdefault(field, [])
        if not isinstance(index, int) or not isinstance(parts, list):
            return None
        while len(parts) <= index:  # a delta for a part never announced: make room
            parts.append({"type": "summary_text" if field == "summary" else None, "text": ""})
        if not isinstance(parts[index], dict):
            parts[index] = {"text": ""}
        return parts[index]

    def add(self, payload: dict[str, Any], seq: int) -> None:
        kind = payload.get("type")
        if kind in _CONTENT_DELTAS:  # most events: a piece of a message's text
            field, answer = _CONTENT_DELTAS[kind]
            delta = payload.get("delta")
            if type(delta) is str:
                where = (payload.get("output_index"), "content", payload.get("content_index"), field)
                part = self.extend(where, delta, payload, seq)
                if part is not None and kind == "response.output_text.delta" and payload.get("logprobs"):
                    part["logprobs"] = [*(part.get("logprobs") or []), *payload["logprobs"]]
                if delta:
                    self.marks.last_token = seq
                    if self.marks.first_answer is None:
                        self.marks.token(seq, answer)
        elif kind == "response.reasoning_summary_text.delta":
            delta = payload.get("delta")
            if type(delta) is str:
                where = (payload.get("output_index"), "summary", payload.get("summary_index"), "text")
                self.extend(where, delta, payload, seq)
                if delta:
                    self.marks.token(seq, False)
        elif kind in _ITEM_DELTAS:
            delta = payload.get("delta")
            if type(delta) is str:
                self.extend((payload.get("output_index"), _ITEM_DELTAS[kind]), delta, payload, seq)
                if delta:
                    self.marks.token(seq, False)
        elif kind == "response.output_item.added":
            item, index = payload.get("item"), payload.get("output_index")
            if isinstance(item, dict) and isinstance(index, int):
                self.items[index] = _own(item)
                if item.get("type") in ("function_call", "custom_tool_call"):
                    self.marks.token(seq, False)  # a tool call starts: generated, not answer text
                # (a server tool's call, like a web search, is the provider's doing, not generated text)
        elif kind == "response.output_item.done":
            item, index = payload.get("item"), payload.get("output_index")
            self.settle(output_index=index)
            if isinstance(item, dict) and isinstance(index, int):
                self.items[index] = _own(item)
        elif kind == "response.content_part.added":
            self.settle(output_index=payload.get("output_index"))  # these replace what the deltas built
            part = self.part(payload, seq)
            if part is not None and isinstance(payload.get("part"), dict):
                part.clear()
                part.update(payload["part"])
        elif kind == "response.reasoning_summary_part.added":
            self.settle(output_index=payload.get("output_index"))  # these replace what the deltas built
            part = self.part(payload, seq, "summary")
            if part is not None and isinstance(payload.get("part"), dict):
                part.clear()
                part.update(payload["part"])
        elif kind in ("response.output_text.done", "response.reasoning_text.done", "response.refusal.done"):
            self.settle(output_index=payload.get("output_index"))  # these replace what the deltas built
            part = self.part(payload, seq)
            field = "refusal" if kind == "response.refusal.done" else "text"
            if part is not None and isinstance(payload.get(field), str):
                part[field] = payload[field]
        elif kind == "response.reasoning_summary_text.done":
            self.settle(output_index=payload.get("output_index"))  # these replace what the deltas built
            part = self.part(payload, seq, "summary")
            if part is not None and isinstance(payload.get("text"), str):
                part["text"] = payload["text"]
        elif kind in ("response.function_call_arguments.done", "response.custom_tool_call_input.done"):
            self.settle(output_index=payload.get("output_index"))  # these replace what the deltas built
            item = self.item(payload, seq)
            field = "arguments" if kind == "response.function_call_arguments.done" else "input"
            if item is not None and isinstance(payload.get(field), str):
                item[field] = payload[field]
        elif kind == "response.output_text.annotation.added":
            part = self.part(payload, seq)
            if part is not None and payload.get("annotation") is not None:
                part["annotations"] = [*(part.get("annotations") or []), payload["annotation"]]
        elif kind == "response.created":
            if self.response is not None:
                self.earlier.append(self.native())
                self.items, self.streamed, self.live, self.terminal, self.terminal_type = {}, {}, {}, None, None
            self.response = dict(payload.get("response") or {})
        elif kind in TERMINAL:
            self.terminal = payload.get("response") if isinstance(payload.get("response"), dict) else {}
            self.terminal_type = kind
            self.rec.done = True
            if kind == "response.failed" and self.terminal.get("error"):
                self.rec.error = self.terminal["error"]
        elif kind == "error":
            # Documented with code and message on the event itself; some servers nest them in `error`.
            nested = payload.get("error")
            self.rec.error = (
                nested
                if isinstance(nested, dict)
                else {k: v for k, v in payload.items() if k not in ("type", "sequence_number")}
            )
        elif kind not in _QUIET and not str(kind).endswith((".in_progress", ".searching", ".completed", ".done")):
            self.unknown[str(kind)] = self.unknown.get(str(kind), 0) + 1

    def extend(self, where: tuple[Any, ...], delta: str, payload: dict[str, Any], seq: int) -> dict[str, Any] | None:
        """Add one delta's text at `where`: kept as pieces, joined into the item or part only
        when the snapshot is read (`settle`), so a long answer costs linear time."""
        live = self.live.get(where)
        if live is None:
            if len(where) == 2:
                target = self.item(payload, seq)
            else:
                target = self.part(payload, seq, "summary" if where[1] == "summary" else "content")
            if target is None:
                return None
            field = where[-1]
            live = self.live[where] = (target, field, target.get(field) or "", [])
        live[3].append(delta)
        streamed = self.streamed.get(where)
        if streamed is None:
            self.streamed[where] = [delta]
        else:
            streamed.append(delta)
        return live[0]

    def settle(self, *, output_index: Any = None) -> None:
        """Bring the items and parts up to date with the pieces added since (all, or those of one output)."""
        for where in [w for w in self.live if output_index is None or w[0] == output_index]:
            target, field, base, pieces = self.live.pop(where)
            target[field] = base + "".join(pieces)

    def snapshot(self) -> dict[str, Any]:
        self.settle()
        response = dict(self.response or {})
        response["output"] = [self.items[i] for i in sorted(self.items)]
        return response

    def native(self) -> dict[str, Any]:
        """The terminal event's response where it has the output, else the folded snapshot."""
        snapshot = self.snapshot()
        final, source = snapshot, "a `….done` event"
        if self.terminal is not None:
            final, source = dict(self.terminal), str(self.terminal_type)
            if not final.get("output") and snapshot["output"]:
                final["output"] = snapshot["output"]
        differs = final is not snapshot and snapshot["output"] and _texts(final) != _texts(snapshot)
        if differs or any(_at(final, where) != "".join(text) for where, text in self.streamed.items()):
            self.rec.warn("final_differs", f"{source} holds other text than the deltas added up to; it is kept")
        return final


def _own(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of an item that the fold may extend without touching the event it came in
    (the events stay in `rec.chunks` as they arrived)."""
    copy = dict(item)
    for field in ("content", "summary"):
        if isinstance(copy.get(field), list):
            copy[field] = [dict(part) if isinstance(part, dict) else part for part in copy[field]]
    return copy


def _at(response: dict[str, Any], where: tuple[Any, ...]) -> str:
    """The text at `where` (see `_Fold.streamed`) in a response, or "" where it has none."""
    value: Any = response.get("output")
    for step in where:
        if isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            value = value[step]
        elif isinstance(value, dict) and isinstance(step, str):
            value = value.get(step)
        else:
            return ""
    return value if isinstance(value, str) else ""


def _texts(response: dict[str, Any]) -> tuple[str, str]:
    """Answer text and tool arguments of a response, to compare two versions of it."""
    text, arguments = [], []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text += [
                str(p.get("text") or p.get("refusal") or "")
                for p in as_list(item.get("content"))
                if isinstance(p, dict)
            ]
        elif item.get("type") in ("function_call", "custom_tool_call"):
            arguments.append(str(item.get("arguments") or item.get("input") or ""))
    return "".join(text), "\x00".join(arguments)


def reconstruct_stream(exchange: Exchange, rec: Reconstruction) -> Reconstruction:
    fold = _Fold(rec)
    for t_ms, name, payload in stream_payloads(exchange, rec):
        if not isinstance(payload, dict):
            rec.warn("chunk_shape", f"event {len(rec.chunks) + 1}: a {type(payload).__name__}, not an object: ignored")
            continue
        if payload.get("type") is None and name:
            payload["type"] = name
        seq = add_chunk(rec, t_ms, payload)
        try:
            fold.add(payload, seq)
        except (TypeError, AttributeError, ValueError, KeyError, IndexError) as exc:
            rec.warn("chunk_shape", f"event {seq + 1}: a field of an unexpected type ({exc}): ignored")
    if fold.earlier:
        rec.warn(
            "several_responses",
            f"{len(fold.earlier) + 1} responses in one stream; the last is reconstructed, the others kept as extras",
        )
        rec.extras["earlier_responses"] = fold.earlier
    for name, count in fold.unknown.items():
        rec.warn("unknown_event", f"{count} event(s) of unknown type {name!r}: kept in the chunks, not interpreted")
    _apply(rec, fold.native(), fold.terminal_type)
    rec.marks = fold.marks.as_dict()
    ending(exchange, rec, fold.terminal_type is not None, "response.completed")
    return rec


def reconstruct_json(exchange: Exchange, rec: Reconstruction, obj: Any) -> Reconstruction:
    """A non-streaming response: the response object itself."""
    if not isinstance(obj, dict):
        rec.warn("response_shape", f"a {type(obj).__name__}, not a response object")
        return rec
    add_chunk(rec, None, obj)
    status = obj.get("status")
    _apply(rec, dict(obj), {"incomplete": "response.incomplete", "failed": "response.failed"}.get(status))
    rec.done = True
    if obj.get("error"):
        rec.error = obj["error"]
    choice = rec.choices[0] if rec.choices else None
    if choice and (choice.content or choice.reasoning or choice.tool_calls):
        rec.marks = {"first_token": 0, "first_answer": 0 if choice.content else None, "last_token": 0}
    return rec


def _apply(rec: Reconstruction, response: dict[str, Any], terminal: str | None) -> None:
    rec.native = response
    rec.object = response.get("object") if isinstance(response.get("object"), str) else "response"
    rec.id = response.get("id") if isinstance(response.get("id"), str) else None
    if isinstance(response.get("model"), str) and response["model"]:
        rec.served_model = response["model"]
    if isinstance(response.get("created_at"), (int, float)):
        rec.created = response["created_at"]
    if isinstance(response.get("service_tier"), str):
        rec.service_tier = response["service_tier"]
    texts: list[str] = []
    refusals: list[str] = []
    summaries: list[str] = []
    reasoning_texts: list[str] = []
    details: list[Any] = []
    annotations: list[Any] = []
    logprobs: list[Any] = []
    calls = []
    server: list[Any] = []
    role = "assistant"
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            role = item.get("role") or role
            for part in as_list(item.get("content")):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "refusal":
                    refusals.append(part.get("refusal") or "")
                else:
                    texts.append(as_text(part.get("text")))
                    annotations.extend(as_list(part.get("annotations")))
                    logprobs.extend(as_list(part.get("logprobs")))
        elif kind == "reasoning":
            summaries += [str(s.get("text") or "") for s in as_list(item.get("summary")) if isinstance(s, dict)]
            reasoning_texts += [str(c.get("text") or "") for c in as_list(item.get("content")) if isinstance(c, dict)]
            details.append(item)
        elif kind == "function_call":
            calls.append(tool_call(len(calls), item.get("call_id"), item.get("name"), str(item.get("arguments") or "")))
        elif kind == "custom_tool_call":
            calls.append(
                tool_call(len(calls), item.get("call_id"), item.get("name"), str(item.get("input") or ""), "custom")
            )
            calls[-1].parsed_arguments, calls[-1].parse_error = None, None  # free text, not JSON
        else:
            server.append(item)
    reasoning, source = None, None
    if summaries:
        reasoning, source = "\n\n".join(summaries), "reasoning.summary"
    elif reasoning_texts:
        reasoning, source = "".join(reasoning_texts), "reasoning.content"
    finish = None
    if terminal == "response.completed" or (terminal is None and response.get("status") == "completed"):
        finish = "tool_calls" if calls else "stop"
    elif terminal == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        finish = INCOMPLETE_REASONS.get(reason, reason or "incomplete")
    extras: dict[str, Any] = {}
    if server:
        extras["server_tools"] = server
    if response.get("status"):
        extras["status"] = response["status"]
    rec.choices = [
        Choice(
            index=0,
            role=role,
            content="".join(texts) if texts else None,
            refusal="".join(refusals) if refusals else None,
            reasoning=reasoning,
            reasoning_source=source,
            reasoning_details=details,
            tool_calls=calls,
            logprobs={"content": logprobs} if logprobs else None,
            finish_reason=finish,
            annotations=annotations,
            extras=extras,
        )
    ]
    if isinstance(response.get("usage"), dict):
        rec.usage = normalise_usage(response["usage"])
    if response.get("error") and rec.error is None:
        rec.error = response["error"]


def chunk_parts(payload: Any) -> list[Part]:
    """What one event carries (frames.chunks)."""
    if not isinstance(payload, dict):
        return []
    kind = payload.get("type")
    delta = payload.get("delta")
    if kind == "response.output_text.delta":
        return [Part(0, "content", delta)] if delta else []
    if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
        return [Part(0, "reasoning", delta)] if delta else []
    if kind == "response.refusal.delta":
        return [Part(0, "refusal", delta)] if delta else []
    if kind in _ITEM_DELTAS:
        return [Part(0, "tool_call", delta or "")]
    if kind == "response.output_item.added":
        item = payload.get("item") or {}
        if item.get("type") in ("function_call", "custom_tool_call"):
            return [Part(0, "tool_call", "")]
        if item.get("type") not in ("message", "reasoning"):
            return [Part(0, "extra", orjson.dumps(item).decode())]
        return []
    if kind == "response.output_text.annotation.added":
        return [Part(0, "extra", orjson.dumps(payload.get("annotation")).decode())]
    if kind in TERMINAL:
        response = payload.get("response") or {}
        return [Part(None, "usage", orjson.dumps(response["usage"]).decode())] if response.get("usage") else []
    if kind == "error":
        return [Part(None, "error", orjson.dumps(payload.get("error", payload)).decode())]
    return []


# -- the request ------------------------------------------------------------------------------


def request_messages(body: Any) -> list[dict[str, Any]]:
    """`instructions` and `input` as chat messages (OpenAI chat's shape)."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, Any]] = []
    if body.get("instructions"):
        out.append({"role": "system", "content": content_text(body["instructions"])})
    items = body.get("input")
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    pending: dict[str, Any] | None = None  # an assistant turn being assembled from items
    for item in items or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role == "developer":
                role = "system"
            text = content_text(item.get("content"))
            if role == "assistant":
                if pending is None:
                    pending = {"role": "assistant", "content": ""}
                    out.append(pending)
                pending["content"] = (pending["content"] or "") + text
            else:
                pending = None
                out.append({"role": role, "content": text})
        elif kind in ("function_call", "custom_tool_call", "reasoning"):
            if pending is None:
                pending = {"role": "assistant", "content": None}
                out.append(pending)
            if kind == "reasoning":
                summary = "\n\n".join(
                    str(s.get("text") or "") for s in as_list(item.get("summary")) if isinstance(s, dict)
                )
                if summary:
                    pending["reasoning_content"] = summary
                continue
            arguments = item.get("arguments") if kind == "function_call" else item.get("input")
            pending.setdefault("tool_calls", []).append(
                {
                    "id": item.get("call_id"),
                    "type": "function" if kind == "function_call" else "custom",
                    "function": {
                        "name": item.get("name"),
                        "arguments": arguments if isinstance(arguments, str) else json_text(arguments),
                    },
                }
            )
        elif kind in ("function_call_output", "custom_tool_call_output"):
            pending = None
            output = item.get("output")
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else content_text(output),
                }
            )
        elif kind == "item_reference":
            continue
        else:
            pending = None
            out.append({"role": "user", "content": f"[{kind}]"})
    return out


def request_tools(body: Any) -> list[dict[str, Any]]:
    """Function tools in chat/completions' shape; built-in tools keep their own."""
    tools = body.get("tools") if isinstance(body, dict) else None
    out = []
    for tool in tools or ():
        if isinstance(tool, dict) and tool.get("type") == "function":
            function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if k in tool}
            out.append({"type": "function", "function": function})
        elif isinstance(tool, dict):
            out.append(tool)
    return out
