"""Tools the provider ran itself, in their place in the reply: web search, web fetch, code
execution, file search, MCP, URL context, X search.

The folds keep each protocol's own items (a choice's `extras["server_tools"]`, Gemini's
grounding and URL context metadata, Groq compound's `executed_tools`); `segments(rec)`
reads them back as what a reader of the transcript needs, in reply order:

- Anthropic: `server_tool_use` / `mcp_tool_use` blocks, each joined with the result block
  that answers it (`*_tool_result`, by `tool_use_id`), between the text blocks; the
  citations of text blocks as the reply's sources.
- OpenAI Responses: `web_search_call`, `file_search_call`, `code_interpreter_call`,
  `mcp_call`, `mcp_list_tools`, `x_search_call`, `image_generation_call` output items,
  between the message items; `url_citation` annotations as sources.
- Gemini: `executableCode` parts joined with the `codeExecutionResult` after them, between
  the text parts; search grounding (queries and sources) and URL context at the end, where
  Gemini reports them.
- chat/completions: Groq compound's `executed_tools` before the answer (it runs them first);
  `url_citation` annotations (OpenRouter) and Perplexity's `citations` as sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from analyzer.model import Reconstruction, dumps_exact, loads_exact
from analyzer.protocols.events import as_list


@dataclass(slots=True)
class ServerTool:
    """One tool call the provider ran: what the model asked, and what came back."""

    # What kind of tool: web_search, web_fetch, code_execution, file_search, mcp, url_context, ...
    kind: str
    # The tool's own name where it has one (`bash_code_execution`, an MCP tool's name).
    name: str | None = None
    # What the model asked, as text: the query, the URL, the code, the arguments.
    request: str | None = None
    # What came back, as text: the code's output, an MCP answer, an error.
    result: str | None = None
    # (title, url) of what the tool found or read.
    sources: list[tuple[str, str]] = field(default_factory=list)
    # completed, failed, an error code, ... as the provider said.
    status: str | None = None


Segment = str | ServerTool


def segments(rec: Reconstruction, index: int = 0) -> list[Segment]:
    """Choice `index`'s reply as text and server tools in the order they came (the text is
    the answer's, reasoning and client tool calls left out). Without server tools or
    sources: the answer alone, as one segment (or none)."""
    if index >= len(rec.choices):
        return []
    choice = rec.choices[index]
    native = _native(rec)
    found: list[Segment] = []
    if rec.protocol == "anthropic_messages" and isinstance(native, dict) and native.get("content"):
        found = _anthropic(native["content"])
    elif rec.protocol == "openai_responses" and isinstance(native, dict) and native.get("output"):
        found = _responses(native["output"])
    elif rec.protocol == "gemini" and isinstance(native, dict):
        found = _gemini(native, index, choice.extras)
    if not any(isinstance(segment, ServerTool) for segment in found):
        found = [*_chat_tools(choice.extras), *([choice.content] if choice.content else [])]
        found += _chat_sources(choice.annotations, rec.extras)
    return [segment for segment in found if segment]


def has_server_tools(rec: Reconstruction) -> bool:
    """Whether any choice's reply holds a server tool or sources (cheap: no native object built)."""
    for choice in rec.choices:
        extras = choice.extras
        if extras.get("server_tools") or extras.get("groundingMetadata") or extras.get("urlContextMetadata"):
            return True
        if extras.get("executed_tools") or choice.annotations or rec.extras.get("citations"):
            return True
    return False


def _native(rec: Reconstruction) -> Any:
    try:
        return rec.to_native()
    except Exception:  # an odd reconstruction: its extras alone are read
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else dumps_exact(value)


def _source(title: Any, url: Any) -> tuple[str, str] | None:
    if not isinstance(url, str) or not url:
        return None
    return (title if isinstance(title, str) else "", url)


def _sources(pairs: Iterator[tuple[str, str] | None]) -> list[tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}
    for pair in pairs:
        if pair is not None and pair[1] not in seen:
            seen[pair[1]] = pair
    return list(seen.values())


# -- Anthropic -----------------------------------------------------------------------------


def _anthropic(blocks: list[Any]) -> list[Segment]:
    results = {b.get("tool_use_id"): b for b in blocks if isinstance(b, dict) and b.get("tool_use_id")}
    out: list[Segment] = []
    cited: list[tuple[str, str] | None] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            out.append(_text(block.get("text")) or "")
            for citation in as_list(block.get("citations")):
                if isinstance(citation, dict):
                    cited.append(_source(citation.get("title"), citation.get("url")))
        elif kind in ("server_tool_use", "mcp_tool_use"):
            out.append(_anthropic_tool(block, results.get(block.get("id"))))
    sources = _sources(iter(cited))
    if sources:
        out.append(ServerTool("citations", sources=sources))
    return _joined_text(out)


def _anthropic_tool(use: dict[str, Any], answer: dict[str, Any] | None) -> ServerTool:
    name = use.get("name") if isinstance(use.get("name"), str) else None
    given = use.get("input") if isinstance(use.get("input"), dict) else {}
    if use.get("type") == "mcp_tool_use":
        server = use.get("server_name")
        tool = ServerTool("mcp", f"{server}/{name}" if server else name, _text(given))
    else:
        request = next(
            (given[key] for key in ("query", "url", "code", "command") if isinstance(given.get(key), str)), None
        )
        kind = "code_execution" if name and name.endswith("code_execution") else (name or "server_tool")
        tool = ServerTool(kind, name, request if request is not None else (_text(given) if given else None))
    if answer is not None:
        _anthropic_result(tool, answer.get("content"), answer.get("is_error"))
    return tool


def _anthropic_result(tool: ServerTool, content: Any, is_error: Any) -> None:
    if isinstance(content, list):  # web search results, MCP text blocks
        tool.sources = _sources(_source(c.get("title"), c.get("url")) for c in content if isinstance(c, dict))
        texts = [c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
        tool.result = "\n".join(texts) or None
    elif isinstance(content, dict):
        if "error_code" in content:
            tool.status = f"error: {content['error_code']}"
            return
        if isinstance(content.get("url"), str):  # web fetch: the page read
            document = content.get("content") if isinstance(content.get("content"), dict) else {}
            tool.sources = [(document.get("title") or "", content["url"])]
        outputs = [content.get(key) for key in ("stdout", "stderr") if isinstance(content.get(key), str)]
        if any(outputs):
            tool.result = "\n".join(output for output in outputs if output)
        if isinstance(content.get("return_code"), int) and content["return_code"]:
            tool.status = f"exit code {content['return_code']}"
    if is_error is True:
        tool.status = tool.status or "error"


def _joined_text(out: list[Segment]) -> list[Segment]:
    """Consecutive text blocks as one segment (a cited answer comes as a block per sentence)."""
    joined: list[Segment] = []
    for segment in out:
        if isinstance(segment, str) and joined and isinstance(joined[-1], str):
            joined[-1] += segment
        else:
            joined.append(segment)
    return joined


# -- OpenAI Responses ----------------------------------------------------------------------


def _responses(items: list[Any]) -> list[Segment]:
    out: list[Segment] = []
    cited: list[tuple[str, str] | None] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "message":
            for part in as_list(item.get("content")):
                if isinstance(part, dict) and part.get("type") == "output_text":
                    out.append(_text(part.get("text")) or "")
                    for note in as_list(part.get("annotations")):
                        if isinstance(note, dict) and note.get("type") == "url_citation":
                            cited.append(_source(note.get("title"), note.get("url")))
        elif isinstance(kind, str) and (kind.endswith("_call") or kind == "mcp_list_tools") and kind != "function_call":
            if kind in ("custom_tool_call",):
                continue  # the client's tools: shown as tool calls
            out.append(_responses_tool(kind, item))
    sources = _sources(iter(cited))
    if sources:
        out.append(ServerTool("citations", sources=sources))
    return _joined_text(out)


def _argument(arguments: Any, key: str) -> str | None:
    """`key` of a JSON arguments string, or the whole string when it has none."""
    if not isinstance(arguments, str):
        return _text(arguments)
    try:
        parsed = loads_exact(arguments)
    except ValueError:
        return arguments
    return _text(parsed.get(key)) if isinstance(parsed, dict) and key in parsed else arguments


def _responses_tool(kind: str, item: dict[str, Any]) -> ServerTool:
    status = item.get("status") if isinstance(item.get("status"), str) else None
    if kind == "web_search_call":
        action = item.get("action") if isinstance(item.get("action"), dict) else {}
        query = (
            action.get("query") or "; ".join(q for q in as_list(action.get("queries")) if isinstance(q, str)) or None
        )
        request = _text(query) or _text(action.get("url"))
        sources = _sources(
            _source(s.get("title"), s.get("url")) for s in as_list(action.get("sources")) if isinstance(s, dict)
        )
        action_type = action.get("type") if action.get("type") != "search" else None  # open_page, find_in_page
        return ServerTool("web_search", _text(action_type), request, None, sources, status)
    if kind == "file_search_call":
        queries = "; ".join(q for q in as_list(item.get("queries")) if isinstance(q, str)) or None
        results = [r for r in as_list(item.get("results")) if isinstance(r, dict)]
        texts = [f"{r.get('filename') or r.get('file_id') or '?'}: {_text(r.get('text')) or ''}" for r in results]
        return ServerTool("file_search", None, queries, "\n".join(texts) or None, [], status)
    if kind == "code_interpreter_call":
        logs = [
            o.get("logs")
            for o in as_list(item.get("outputs"))
            if isinstance(o, dict) and isinstance(o.get("logs"), str)
        ]
        code = _text(item.get("code")) or _argument(item.get("arguments"), "code")  # xAI: the code in `arguments`
        return ServerTool("code_execution", "code_interpreter", code, "\n".join(logs) or None, [], status)
    if kind == "mcp_call":
        server, name = item.get("server_label"), item.get("name")
        result = _text(item.get("output")) or (f"error: {_text(item['error'])}" if item.get("error") else None)
        return ServerTool(
            "mcp", f"{server}/{name}" if server else _text(name), _text(item.get("arguments")), result, [], status
        )
    if kind == "mcp_list_tools":
        names = [
            t.get("name") for t in as_list(item.get("tools")) if isinstance(t, dict) and isinstance(t.get("name"), str)
        ]
        return ServerTool("mcp_list_tools", _text(item.get("server_label")), None, ", ".join(names) or None, [], status)
    if kind == "image_generation_call":
        return ServerTool("image_generation", None, _text(item.get("revised_prompt")), "[an image]", [], status)
    name = item.get("name") if isinstance(item.get("name"), str) else None
    request = _text(item.get("arguments") or item.get("action") or item.get("input"))
    return ServerTool(kind.removesuffix("_call"), name, request, _text(item.get("output")), [], status)


# -- Gemini --------------------------------------------------------------------------------


def _gemini(native: dict[str, Any], index: int, extras: dict[str, Any]) -> list[Segment]:
    candidates = [c for c in as_list(native.get("candidates")) if isinstance(c, dict)]
    candidate = next(
        (c for c in candidates if c.get("index", 0) == index), candidates[index] if index < len(candidates) else {}
    )
    parts = (candidate.get("content") or {}).get("parts") if isinstance(candidate.get("content"), dict) else None
    out: list[Segment] = []
    for part in as_list(parts):
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought") and "functionCall" not in part:
            out.append(part["text"])
        elif isinstance(part.get("executableCode"), dict):
            code = part["executableCode"]
            out.append(ServerTool("code_execution", _text(code.get("language")), _text(code.get("code"))))
        elif isinstance(part.get("codeExecutionResult"), dict):
            result = part["codeExecutionResult"]
            tool = out[-1] if out and isinstance(out[-1], ServerTool) and out[-1].kind == "code_execution" else None
            if tool is None:
                tool = ServerTool("code_execution")
                out.append(tool)
            tool.result = _text(result.get("output"))
            outcome = result.get("outcome")
            tool.status = None if outcome in (None, "OUTCOME_OK") else _text(outcome)
    grounding = candidate.get("groundingMetadata") or extras.get("groundingMetadata")
    if isinstance(grounding, dict):
        queries = "; ".join(q for q in as_list(grounding.get("webSearchQueries")) if isinstance(q, str)) or None
        chunks = [
            c.get("web") or c.get("retrievedContext")
            for c in as_list(grounding.get("groundingChunks"))
            if isinstance(c, dict)
        ]
        sources = _sources(_source(c.get("title"), c.get("uri")) for c in chunks if isinstance(c, dict))
        if queries or sources:
            out.append(ServerTool("web_search", "google_search", queries, None, sources))
    context = candidate.get("urlContextMetadata") or extras.get("urlContextMetadata")
    if isinstance(context, dict):
        read = [m for m in as_list(context.get("urlMetadata")) if isinstance(m, dict)]
        sources = _sources(_source(_text(m.get("urlRetrievalStatus")), m.get("retrievedUrl")) for m in read)
        if sources:
            out.append(ServerTool("url_context", None, None, None, sources))
    return _joined_text(out)


# -- chat/completions ----------------------------------------------------------------------


def _chat_tools(extras: dict[str, Any]) -> list[Segment]:
    """Groq compound's `executed_tools`: each search or code run with its output."""
    out: list[Segment] = []
    for run in as_list(extras.get("executed_tools")):
        if not isinstance(run, dict):
            continue
        kind = run.get("type") if isinstance(run.get("type"), str) else "tool"
        out.append(ServerTool({"search": "web_search", "python": "code_execution"}.get(kind, kind), kind,
                              _text(run.get("arguments")), _text(run.get("output"))))  # fmt: skip
    return out


def _chat_sources(annotations: Any, extras: dict[str, Any]) -> list[Segment]:
    """OpenRouter's `url_citation` annotations, Perplexity's top-level `citations`."""
    found: list[tuple[str, str] | None] = []
    for note in as_list(annotations):
        if isinstance(note, dict):
            cited = note.get("url_citation") if isinstance(note.get("url_citation"), dict) else note
            found.append(_source(cited.get("title"), cited.get("url")))
    found += [_source("", url) for url in as_list(extras.get("citations")) if isinstance(url, str)]
    sources = _sources(iter(found))
    return [ServerTool("citations", sources=sources)] if sources else []
