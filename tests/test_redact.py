"""Credentials never leave in an export: headers by name, key shapes anywhere."""

from __future__ import annotations

import pytest

from analyzer.redact import redact_headers, redact_text, token

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoxMDAwMDEsInVzZXJuYW1lIjoiZXhhbXBsZS11c2VyIn0"
    ".c2lnbmF0dXJlLW5vdC1yZWFsLXNpZ25hdHVyZQ"
)


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwx",
        "sk-or-v1-0123456789abcdef0123456789abcdef",
        "gsk_abcdefghijklmnopqrstuvwxyz0123",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
        "AKIAABCDEFGHIJKLMNOP",
        JWT,
    ],
)
def test_key_shapes_are_redacted_anywhere_in_text(secret: str) -> None:
    text = f'{{"note": "my key is {secret} ok"}}'
    redacted = redact_text(text)
    assert secret not in redacted
    assert token(secret) in redacted


def test_bearer_token_and_query_secret() -> None:
    text = "Authorization: Bearer abc.def-123 and https://host/v1?key=s3cr3t&alt=sse"
    redacted = redact_text(text)
    assert "abc.def-123" not in redacted and "s3cr3t" not in redacted
    assert "&alt=sse" in redacted and "https://host/v1?key=<redacted:" in redacted


def test_same_secret_same_placeholder_so_sessions_can_be_told_apart() -> None:
    assert token("sk-a") == token("sk-a") != token("sk-b")
    assert token(token("sk-a")) == token("sk-a")


def test_credential_headers_replaced_whole() -> None:
    headers = [("Authorization", "Bearer x"), ("Cookie", "a=b"), ("x-goog-api-key", "k"), ("Accept", "*/*")]
    names = [value.startswith("<redacted:") for _, value in redact_headers(headers)]
    assert names == [True, True, True, False]


def test_ordinary_text_is_left_alone() -> None:
    text = "The skeleton key sk- is short; eyJ alone is not a JWT; ask-me-anything."
    assert redact_text(text) == text
