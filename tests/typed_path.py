"""Whether a stream takes its protocol's typed path, the one users run (a whole stream cut and
decoded typed in one call), rather than the general decoder (a dict per event): the
differential tests assert that their seeds reach it."""

from __future__ import annotations

from analyzer.model import Exchange, Reconstruction, Request, Response
from analyzer.protocols import anthropic, gemini, openai_chat, openai_responses

URLS = {
    "openai_chat": "https://api.openai.com/v1/chat/completions",
    "anthropic_messages": "https://api.anthropic.com/v1/messages",
    "openai_responses": "https://api.openai.com/v1/responses",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models/g:streamGenerateContent?alt=sse",
}


def takes_typed_path(protocol: str, body: bytes) -> bool:
    if protocol == "openai_chat":
        return openai_chat._whole_stream(body, None) is not None
    response = Response(status=200, headers=[("content-type", "text/event-stream")], body=body)
    exchange = Exchange(id="x", source="<typed_path>", format="sse-text", request=Request(method="POST", url=URLS[protocol]), response=response)  # fmt: skip
    module = {"anthropic_messages": anthropic, "openai_responses": openai_responses, "gemini": gemini}[protocol]
    return module._typed_events(exchange, Reconstruction(protocol=protocol, streamed=True)) is not None
