"""Server-side tools read back in their place in the reply, from real recordings of each
protocol (tests/data/real): what the model asked, what came back, the sources.
The expectations are read off the recordings themselves."""

from __future__ import annotations

from bundled import REAL_CORPUS as CORPUS

import analyzer
from analyzer.protocols.server_tools import ServerTool, segments


def _segments(name: str) -> list[str | ServerTool]:
    [exchange] = analyzer.load(CORPUS / name)
    return segments(exchange.reconstruct())


def _kinds(found: list[str | ServerTool]) -> list[str]:
    return ["text" if isinstance(segment, str) else segment.kind for segment in found]


def test_anthropic_code_execution_sits_between_the_texts_it_came_between() -> None:
    found = _segments("anthropic__anthropic_messages__code-execution.sse")
    assert _kinds(found) == ["text", "code_execution", "text"]
    tool = found[1]
    assert isinstance(tool, ServerTool) and tool.name == "bash_code_execution"
    assert tool.request == 'echo "65465-6544 * 65464-6+1.02255" | bc -l' and tool.result == "-428330955.97745\n"


def test_gemini_code_and_its_result_are_one_tool_before_the_answer() -> None:
    found = _segments("google__gemini__code-execution.sse")
    assert _kinds(found) == ["code_execution", "text"]
    tool = found[0]
    assert isinstance(tool, ServerTool) and tool.name == "PYTHON"
    assert tool.request == "result = 65465 - 6544 * 65464 - 6 + 1.02255\nprint(result)"
    assert tool.result == "-428330955.97745\n"


def test_gemini_search_grounding_gives_its_queries_and_sources_after_the_answer() -> None:
    found = _segments("google__gemini__web-search.sse")
    assert _kinds(found) == ["text", "web_search"]
    tool = found[1]
    assert isinstance(tool, ServerTool) and tool.request == "weather in San Francisco today"
    assert tool.sources[0] == (
        "Weather information for San Francisco, CA, US",
        "https://www.google.com/search?q=weather+in+San Francisco, CA,+US",
    )


def test_anthropic_web_fetch_names_the_page_it_read() -> None:
    found = _segments("anthropic__anthropic_messages__web-fetch.sse")
    fetch = [s for s in found if isinstance(s, ServerTool) and s.kind == "web_fetch"]
    assert [(f.request, f.sources) for f in fetch] == [
        ("https://example.com", [("Example Domain", "https://example.com")])
    ]


def test_responses_web_search_calls_and_url_citations() -> None:
    found = _segments("openai__openai_responses__web-search-vercel.sse")
    assert _kinds(found) == ["web_search"] * 6 + ["text", "citations"]
    first = found[0]
    assert isinstance(first, ServerTool) and first.request == "tech news today December 5 2025"
    assert (
        first.status == "completed"
        and first.sources[0][1] == "https://www.wired.com/story/the-big-interview-2025-recap"
    )
    opened = found[2]
    assert (
        isinstance(opened, ServerTool)
        and opened.name == "open_page"
        and opened.request.startswith("https://techcrunch.com/")
    )


def test_groq_compound_runs_its_search_before_the_answer() -> None:
    found = _segments("groq__openai_chat__compound-web-search.sse")
    assert _kinds(found) == ["web_search", "text"]
    tool = found[0]
    assert isinstance(tool, ServerTool) and tool.request == '{"query": "What is the weather in San Francisco today?"}'
    assert tool.result is not None and tool.result.startswith("Title: Weather in San Francisco")


def test_chat_citations_from_openrouter_annotations_and_perplexity() -> None:
    openrouter = _segments("openrouter__openai_chat__web-search-annotations.sse")
    assert _kinds(openrouter) == ["text", "citations"]
    assert openrouter[1].sources[0] == (
        "AI Agent Framework, the Pydantic way - GitHub",
        "https://github.com/pydantic/pydantic-ai",
    )  # type: ignore[union-attr]
    perplexity = _segments("perplexity__openai_chat__sonar-citations.sse")
    assert _kinds(perplexity) == ["text", "citations"]


def test_a_reply_without_server_tools_is_its_answer() -> None:
    [exchange] = analyzer.load(CORPUS / "openai__openai_chat__gpt41nano-text.sse")
    rec = exchange.reconstruct()
    assert segments(rec) == [rec.choices[0].content]
