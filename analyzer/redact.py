"""Credentials out: headers by name, and key / token / JWT shapes anywhere in text.

A secret becomes `<redacted:xxxxxxxx>` (a SHA-256 prefix of it), so two sessions can
still be told apart without either being readable.
"""

from __future__ import annotations

import hashlib
import re

SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-goog-api-key"}
)

_PATTERNS = [
    # Authorization schemes inside text (headers pasted into a body or a log line).
    re.compile(r"(?<=\b[Bb]earer )[^\s\"',;]+"),
    re.compile(r"(?<=\b[Bb]asic )[A-Za-z0-9+/=]{8,}"),
    # JWTs: three base64url parts, the first two JSON objects.
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # Provider API keys by their documented prefixes.
    re.compile(r"\bsk-(?:ant-|proj-|or-v1-)?[A-Za-z0-9_-]{16,}"),
    re.compile(r"\b(?:gsk|xai|pplx|ghp|gho|ghu|ghs|ghr|hf|glpat|r8|fw)_[A-Za-z0-9_-]{16,}"),
    re.compile(r"\bxai-[A-Za-z0-9]{20,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    # Secrets passed as URL query parameters or JSON fields with telling names (group "secret").
    re.compile(
        r"[?&](?:key|api_key|apikey|api-key|access_token|token|auth|sig|signature)=(?P<secret>[^&#\s\"']+)", re.I
    ),
    re.compile(r"\"(?:api_key|apiKey|access_token|refresh_token|client_secret|password)\":\s?\"(?P<secret>[^\"]+)"),
]


def token(secret: str) -> str:
    """The placeholder for one secret value."""
    if secret.startswith("<redacted:"):
        return secret
    return f"<redacted:{hashlib.sha256(secret.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}>"


def redact_text(text: str) -> str:
    """Replace every key, token or JWT shape in `text`."""
    for pattern in _PATTERNS:
        text = pattern.sub(_replace, text)
    return text


def _replace(match: re.Match[str]) -> str:
    if "secret" not in match.re.groupindex:
        return token(match.group(0))
    start, end = match.span("secret")
    whole = match.group(0)
    offset = match.start()
    return whole[: start - offset] + token(match.group("secret")) + whole[end - offset :]


def redact_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Credential headers replaced whole; other headers scanned for key shapes."""
    return [
        (name, token(value) if name.lower() in SECRET_HEADERS and value else redact_text(value))
        for name, value in headers
    ]
