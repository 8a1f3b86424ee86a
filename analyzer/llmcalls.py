"""Which HTTP exchanges are LLM API calls: one rule for the capture addon and the readers.

Standard library only: `addons/chatcap.py` loads this file by path inside mitmproxy.
"""

from __future__ import annotations

import json
import re

# LLM API calls by path, on any host (gateways and self-hosted servers use their own).
LLM_PATH = re.compile(
    r"(/chat/completions|/completions|/responses|/v1/messages|:generateContent|:streamGenerateContent)/?$"
)


def is_llm_request(method: str | None, path: str, content_type: str, body: bytes | None) -> bool:
    """A POST to a known LLM API path, or any POST whose JSON body has `messages`."""
    if (method or "").upper() != "POST":  # e.g. a browser's CORS preflight to the same path
        return False
    if LLM_PATH.search(path.split("?", 1)[0]):
        return True
    if "json" in content_type.lower() and body and b'"messages"' in body[:65536]:
        try:
            parsed = json.loads(body)
        except ValueError:
            return False
        return isinstance(parsed, dict) and "messages" in parsed
    return False


def is_chat_stream(content_type: str, body_head: bytes) -> bool:
    """An event stream that carries chat `choices`, whatever the path."""
    return "text/event-stream" in content_type.lower() and b'"choices"' in body_head[:65536]
