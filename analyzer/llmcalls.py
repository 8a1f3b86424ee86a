"""Which HTTP exchanges are LLM API calls: one rule for the capture addon and the readers.

Standard library only: the addon (analyzer/addon.py) loads this file by path inside mitmproxy.
"""

from __future__ import annotations

import functools
import json
import re

# LLM API calls by path, on any host (gateways and self-hosted servers use their own),
# and the protocol each path speaks.
PROTOCOL_PATHS = (
    (re.compile(r"/chat/completions/?$|/completions/?$"), "openai_chat"),
    (re.compile(r"/v1/messages/?$"), "anthropic_messages"),
    (re.compile(r"/responses/?$"), "openai_responses"),
    (re.compile(r":(?:stream)?[gG]enerateContent$"), "gemini"),
)
LLM_PATH = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in PROTOCOL_PATHS))


@functools.lru_cache(maxsize=4096)  # a capture calls a handful of endpoints, thousands of times
def protocol_of_path(path: str) -> str | None:
    """The protocol an API path speaks, or None."""
    path = path.split("?", 1)[0]
    return next((name for pattern, name in PROTOCOL_PATHS if pattern.search(path)), None)


def is_llm_request(method: str | None, path: str, content_type: str, body: bytes | None) -> bool:
    """A POST to a known LLM API path, or any POST whose JSON body has `messages`."""
    if (method or "").upper() != "POST":  # e.g. a browser's CORS preflight to the same path
        return False
    if LLM_PATH.search(path.split("?", 1)[0]):
        return True
    if "json" in content_type.lower() and body and b'"messages"' in body[:65536]:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's recursion limit
            return False
        return isinstance(parsed, dict) and "messages" in parsed
    return False


def is_chat_stream(content_type: str, body_head: bytes) -> bool:
    """An event stream that carries chat `choices`, whatever the path."""
    return "text/event-stream" in content_type.lower() and b'"choices"' in body_head[:65536]
