"""Credentials out, by structure: never by a regular expression over serialised text.

- Headers by name (`is_secret_header`: a generous list and the `*-api-key`, `*-token`,
  `*-secret` families), replaced whole; the scheme of an `Authorization` value is kept.
- URLs: the password of `user:pass@`, and query values whose names mean a secret.
- JSON (bodies, stream payloads, and JSON held inside JSON strings, at any depth): string
  values are decoded before they are judged, so an escape (`\\n`, `\\u0073`) cannot hide a
  key; a value whose key names a credential is replaced whole; every edit replaces one
  whole string token with another, so the result is valid JSON whenever the input was.
- Any decoded text, prose included, only by the *shape* of a credential: provider key
  prefixes, JWTs whose header decodes, private key blocks, `Bearer`/`Basic` values that
  look like credentials, `NAME = "value"` where the name means a secret. Words are never
  shapes: "a basic addition problem" stays as it is.
- Event streams line by line, and then each text channel (`content`, `text`, `arguments`,
  ...) joined across events, so a key the model spells over two chunks is found too.

A secret becomes `<redacted:xxxxxxxx>`: a keyed hash (HMAC-SHA-256) of it under a salt
kept per installation (`~/.config/chatcap/redaction-salt`, made on first use, 0600) or
given in `CHATCAP_REDACTION_SALT`. The same key gets the same placeholder in one capture
(and across one machine's captures), so sessions can still be told apart, while a
dictionary of likely passwords cannot be run against it without the salt.

Standard library only: the mitmproxy addon loads this file by path.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import dataclasses
import functools
import gc
import hashlib
import hmac
import json
import math
import os
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

PLACEHOLDER_PREFIX = "<redacted:"
# What `token` writes: threads find a request's credentials by it.
PLACEHOLDER = re.compile(r"<redacted:[0-9a-f]{8}>")

# -- the salt -------------------------------------------------------------------------------

SALT_ENV = "CHATCAP_REDACTION_SALT"


@functools.cache
def default_salt() -> bytes:
    """This installation's salt: `$CHATCAP_REDACTION_SALT`, else the salt file (made on first
    use), else one for this process only when no file can be kept."""
    given = os.environ.get(SALT_ENV)
    if given:
        return given.encode("utf-8")
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config / "chatcap" / "redaction-salt"
    try:
        return _read_salt(path)
    except FileNotFoundError:
        pass
    except OSError:
        return secrets.token_bytes(32)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode("ascii"))
        return _read_salt(path)
    except OSError:  # read-only home, or another process made it first and it is not readable
        try:
            return _read_salt(path)
        except OSError:
            return secrets.token_bytes(32)


def _read_salt(path: Path) -> bytes:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        salt = handle.read(4096).strip()
    if len(salt) < 16:
        raise OSError(f"{path}: salt too short")
    return salt


def token(secret: str, salt: bytes | None = None) -> str:
    """The placeholder for one secret value (a placeholder stays as it is)."""
    if PLACEHOLDER.fullmatch(secret):
        return secret
    key = default_salt() if salt is None else salt
    digest = hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"{PLACEHOLDER_PREFIX}{digest[:8]}>"


# -- names that mean a secret ----------------------------------------------------------------

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "x-amz-security-token",
        "x-csrf-token",
        "x-xsrf-token",
    }
)
_SECRET_HEADER_ENDINGS = ("-api-key", "-apikey", "-token", "-secret", "-subscription-key", "-access-key", "-password")


def is_secret_header(name: str) -> bool:
    """A header whose whole value is a credential."""
    lower = name.strip().lower()
    return lower in SECRET_HEADERS or lower.endswith(_SECRET_HEADER_ENDINGS) or lower.startswith("x-auth-")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Keys (and query names, and NAME = "value" names) whose value is a credential whatever it looks like.
_SECRET_NAMES = frozenset(
    {
        "apikey",
        "xapikey",
        "password",
        "passwd",
        "passphrase",
        "secret",
        "auth",
        "clientsecret",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "authtoken",
        "sessiontoken",
        "bearertoken",
        "apitoken",
        "authorization",
        "proxyauthorization",
        "cookie",
        "setcookie",
        "privatekey",
        "secretkey",
        "secretaccesskey",
        "accountkey",
        "sharedaccesskey",
        "subscriptionkey",
        "ocpapimsubscriptionkey",
        "xgoogapikey",
        "credentials",
        "connectionstring",
    }
)
_SECRET_ENDINGS = (
    "apikey",
    "password",
    "passwd",
    "secret",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "apitoken",
    "sessiontoken",
    "secretkey",
    "privatekey",
    "secretaccesskey",
    "subscriptionkey",
)


@functools.lru_cache(maxsize=1024)
def _name_rule(name: str) -> str | None:
    """'always' when a value under this name is a credential, 'shaped' when it is one if it
    looks like one (`token`, `x_token`, `key`), None otherwise. `max_tokens`, `eos_token`,
    `prompt_cache_key` and logprobs' `token` hold no credentials and stay."""
    normal = _normal(name)
    if not normal:
        return None
    if normal in _SECRET_NAMES or normal.endswith(_SECRET_ENDINGS):
        return "always"
    if normal == "key" or normal.endswith("token"):
        return "shaped"
    return None


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=:-]{20,}")


def _looks_random(value: str) -> bool:
    """A credential-like string: long, no spaces, letters and digits, high entropy."""
    if not _TOKEN_CHARS.fullmatch(value):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    counts: dict[str, int] = {}
    for c in value:
        counts[c] = counts.get(c, 0) + 1
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


# -- shapes in decoded text ------------------------------------------------------------------

# A shape starts where a token can: not inside a longer word, but right after an escape
# (`\n`), a percent-encoded byte (`%22`) or anything else that is not a token character.
_START = r"(?:(?<![A-Za-z0-9_\-])|(?<=\\[nrt])|(?<=%[0-9A-Fa-f]{2}))"
_END = r"(?![A-Za-z0-9_\-])"

_PREFIXED = (
    "gsk|xai|pplx|hf|r8|fw|npm|ghp|gho|ghu|ghs|ghr|github_pat|glpat|sk_live|sk_test|rk_live|rk_test|pk_live|"
    "whsec|xox[abprse]|pypi|dop_v1|shpat|sq0atp|csk|nvapi|tgp_v1"
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    """One credential shape: run only when one of `triggers` is in the text; the match (or
    its `secret` group) is the credential when `kind`'s check agrees."""

    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    kind: str = ""


def _shape(pattern: str, triggers: tuple[str, ...], kind: str = "") -> _Shape:
    return _Shape(re.compile(pattern), triggers, kind)


_SHAPES = [
    _shape(_START + r"sk-(?:ant-[a-z]+\d*-|proj-|svcacct-|admin-|or-v1-|live_|test_)?[A-Za-z0-9_\-]{20,}", ("sk-",)),
    _shape(_START + f"(?:{_PREFIXED})[_-][A-Za-z0-9_\\-]{{16,}}", ("_", "-")),
    _shape(_START + r"AIza[0-9A-Za-z_\-]{35}" + _END, ("AIza",)),
    _shape(_START + r"ya29\.[0-9A-Za-z_\-]{20,}", ("ya29.",)),
    _shape(_START + r"GOCSPX-[0-9A-Za-z_\-]{20,}", ("GOCSPX-",)),
    _shape(_START + r"(?:AKIA|ASIA)[0-9A-Z]{16}" + _END, ("AKIA", "ASIA")),
    _shape(_START + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", ("eyJ",), "jwt"),
    _shape(r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY-----[\s\S]{16,}?-----END[A-Z ]{0,40}PRIVATE KEY-----", ("PRIVATE KEY",)),
    _shape(r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+)", ("hooks.slack",)),
    _shape(r"discord(?:app)?\.com/api/webhooks/\d+/(?P<secret>[A-Za-z0-9_\-]{20,})", ("/webhooks/",)),
    _shape(
        r"(?:AccountKey|SharedAccessKey|SharedAccessSignature)=(?P<secret>[^;\s\"'\\]{8,})",
        ("AccountKey", "SharedAccess"),
    ),
    # Authorization schemes in text: a value that looks like a credential, never a word.
    _shape(r"(?<![A-Za-z])[Bb]earer\s+(?P<secret>[A-Za-z0-9._~+/\-]{8,}=*)", ("earer",), "bearer"),
    _shape(r"(?<![A-Za-z])[Bb]asic\s+(?P<secret>[A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])", ("asic",), "basic"),
    # A header line in pasted HTTP text or a log: `x-api-key: abc`, `Cookie: a=b; c=d`.
    _shape(r"(?m)^[ \t]*(?P<name>[A-Za-z0-9-]{2,60}):[ \t]*(?P<secret>\S[^\r\n]*?)[ \t]*\r?$", (":",), "header"),
    # URL userinfo: the password.
    _shape(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@\"'<>\\]+:(?P<secret>[^\s@/\"'<>\\]+)@", ("@",)),
    # URL query values whose names mean a secret, or that hold a credential percent-encoded.
    _shape(r"[?&;](?P<name>[A-Za-z0-9_.\-]{1,40})=(?P<secret>[^&#;\s\"'<>\\]+)", ("=",), "query"),
    # NAME = "value" / "name": "value" in code, config or a pasted snippet.
    _shape(
        r"(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]{1,60})[\"']?\s*[:=]\s*[\"'](?P<secret>[^\"'\n\\]{3,})[\"']",
        ('"', "'"),
        "assignment",
    ),
    # Environment variables: OPENAI_API_KEY=sk-..., GITHUB_TOKEN=...
    _shape(
        r"(?<![A-Za-z0-9_])(?P<name>[A-Z][A-Z0-9_]*(?:API_KEY|APIKEY|SECRET|TOKEN|PASSWORD|SECRET_KEY|ACCESS_KEY))"
        r"=(?P<secret>[^\s\"'`;&]+)",
        ("=",),
    ),
]

# A cheap look for anything a shape or a secret name could start with: text without one of
# these (after decoding) is left alone without running each shape.
_MAYBE = re.compile(
    r"sk-|sk_|rk_|pk_|eyJ|AIza|AKIA|ASIA|ya29\.|GOCSPX|gsk_|xai-|pplx-|hf_|r8_|fw_|npm_|gh[pousr]_|github_pat|glpat|"
    r"xox[abprse]-|pypi-|whsec_|dop_v1|shpat_|sq0atp|csk-|nvapi-|tgp_v1|PRIVATE KEY|hooks\.slack|/webhooks/|"
    r"AccountKey|SharedAccess|[Bb]earer\s+[A-Za-z0-9._~+/\-]{8}|[Bb]asic\s+[A-Za-z0-9+/]{6}|://[^\s/]*@|"
    r"[?&;][A-Za-z0-9_.\-]{1,40}=|"
    r"(?i:key|token|secret|passw\w*|passphrase|auth\w*|cookie|credentials?|connection\w*)(?:\\?[\"'])?\s*[:=]"
)


def _check(kind: str, match: re.Match[str]) -> bool:
    secret = match.group("secret") if "secret" in match.re.groupindex else match.group(0)
    if PLACEHOLDER.fullmatch(secret) or secret.startswith(PLACEHOLDER_PREFIX):
        return False
    if kind == "jwt":
        return _decodes_to_json(match.group(0).split(".", 1)[0])
    if kind == "bearer":
        return any(c.isdigit() for c in secret) or len(secret) >= 24
    if kind == "basic":
        return _is_basic_credential(secret)
    if kind == "header":
        if not is_secret_header(match.group("name")):
            return False
        value = secret
        return "=" in value if match.group("name").lower() in ("cookie", "set-cookie") else len(value.split()) <= 2
    if kind == "query":
        name = match.group("name")
        if _name_rule(name) == "always" or _normal(name) in _QUERY_SECRETS or _looks_random(secret):
            return True
        decoded = unquote_plus(secret)  # a credential percent-encoded whole: the whole value goes
        return decoded != secret and bool(_shape_edits(decoded, None))
    if kind == "assignment":
        rule = _name_rule(match.group("name"))
        return rule == "always" or (rule == "shaped" and _looks_random(secret))
    return True


_QUERY_SECRETS = frozenset(
    {"key", "token", "auth", "sig", "signature", "code", "apikey", "xgoogapikey", "privatetoken"}
)


def _decodes_to_json(part: str) -> bool:
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))), dict)
    except (ValueError, binascii.Error):
        return False


def _is_basic_credential(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (ValueError, binascii.Error):
        return False
    _user, colon, password = decoded.partition(":")
    return bool(colon) and bool(password) and decoded.isprintable()


Edit = tuple[int, int, str]  # replace text[start:end] with the string


def _shape_edits(text: str, salt: bytes | None) -> list[Edit]:
    """Where credential shapes sit in one decoded text (prose is never one)."""
    if not _maybe(text):
        return []
    found: list[Edit] = []
    for shape in _SHAPES:
        if not any(trigger in text for trigger in shape.triggers):
            continue
        pattern, kind = shape.pattern, shape.kind
        for match in pattern.finditer(text):
            if not _check(kind, match):
                continue
            start, end = match.span("secret") if "secret" in pattern.groupindex else match.span()
            if kind == "header":  # `Authorization: Bearer <secret>`: the scheme stays
                scheme = _SCHEMES.fullmatch(text, start, end)
                start = scheme.start(2) if scheme else start
            found.append((start, end, token(text[start:end], salt)))
    return _disjoint(found)


def _disjoint(edits: list[Edit]) -> list[Edit]:
    """Edits in order, the first (and longest) of any that overlap kept."""
    edits.sort(key=lambda e: (e[0], -e[1]))
    out: list[Edit] = []
    for edit in edits:
        if out and edit[0] < out[-1][1]:
            continue
        out.append(edit)
    return out


def _apply(text: str, edits: list[Edit]) -> str:
    if not edits:
        return text
    parts, at = [], 0
    for start, end, new in edits:
        parts += [text[at:start], new]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def redact_prose(text: str, salt: bytes | None = None) -> str:
    """Credential shapes out of free text (prose, code, a log line); nothing else changes."""
    return _apply(text, _shape_edits(text, salt))


# -- JSON, by structure ----------------------------------------------------------------------

# A JSON string token, its loop unrolled (`"[^"\\]*(?:\\.[^"\\]*)*"`): the same matches as
# `"(?:[^"\\]|\\.)*"`, whose two branches start on different characters, at about three
# times the speed on long bodies, the plain runs taken in one step each.
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_JSON_STRING = re.compile(_STRING, re.S)
_JSON_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_MEMBER = re.compile(r"\s*:\s*")
_NESTED_DEPTH = 8  # JSON inside a JSON string inside ... : deeper ones are judged as text
_SCHEMES = re.compile(r"(?i)((?:bearer|basic|token|bot|digest|apikey|key)\s+)(\S.*)", re.S)
# The literal starts of the credential shapes (and of `_MAYBE`'s alternatives).
_SHAPE_STARTS = (
    "sk-", "sk_", "rk_", "pk_", "eyJ", "AIza", "AKIA", "ASIA", "ya29.", "GOCSPX", "gsk_", "xai-", "pplx-", "hf_",
    "r8_", "fw_", "npm_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat", "glpat", "xox", "pypi-", "whsec_",
    "dop_v1", "shpat_", "sq0atp", "csk-", "nvapi-", "tgp_v1", "PRIVATE KEY", "hooks.slack", "/webhooks/",
    "AccountKey", "SharedAccess",
)  # fmt: skip
# Where a credential could be once the JSON string around it is decoded: a shape's start, a
# secret's name, or an escape that might hide either.
_HIT_LITERALS = (*_SHAPE_STARTS, "earer", "asic ", "@", "=", "\\u", "\\/")
# Names, found in the lower-cased text, and what must follow each for it to name a value.
_HIT_NAMES = {
    name: re.compile(rest + r"""(?:\\?["'])?\s*[:=]""")
    for name, rest in (("key", ""), ("token", ""), ("secret", ""), ("cookie", ""), ("passw", r"\w*"),
                       ("passphrase", ""), ("auth", r"\w*"), ("credential", "s?"), ("connection", r"\w*"))
}  # fmt: skip

try:  # all the literals (and all the names) in one pass: Aho-Corasick, in Rust
    import ahocorasick_rs

    _LITERAL_SEARCH: Any = ahocorasick_rs.AhoCorasick(list(_HIT_LITERALS))
    _NAME_SEARCH: Any = ahocorasick_rs.AhoCorasick(list(_HIT_NAMES))
except ImportError:  # the addon runs in mitmproxy's Python, which may not have chatcap's dependencies
    _LITERAL_SEARCH = _NAME_SEARCH = None
_NAME_RESTS = list(_HIT_NAMES.values())


def _hits(text: str, start: int, end: int) -> list[int]:
    """Where in text[start:end] a credential could start (see `_HIT_LITERALS`), in order."""
    if _LITERAL_SEARCH is None:
        return _hits_by_find(text, start, end)
    part = text[start:end]
    lower = part.lower()
    try:
        literals = _LITERAL_SEARCH.find_matches_as_indexes(part, overlapping=True)
        names = _NAME_SEARCH.find_matches_as_indexes(lower, overlapping=True)
    except UnicodeEncodeError:  # a lone surrogate (bytes that were not UTF-8, kept): not a Rust string
        return _hits_by_find(text, start, end)
    found = [start + at for _, at, _ in literals]
    for name, at, after in names:
        if _NAME_RESTS[name].match(lower, after):
            found.append(start + at)
    found.sort()
    return found


def _hits_by_find(text: str, start: int, end: int) -> list[int]:
    """`_hits` without ahocorasick_rs: each literal and name looked for in turn (str.find)."""
    found: list[int] = []
    for literal in _HIT_LITERALS:
        at = text.find(literal, start, end)
        while at != -1:
            found.append(at)
            at = text.find(literal, at + 1, end)
    lower = text[start:end].lower()
    for name, rest in _HIT_NAMES.items():
        at = lower.find(name)
        while at != -1:
            if rest.match(lower, at + len(name)):
                found.append(start + at)
            at = lower.find(name, at + 1)
    found.sort()
    return found


# Where a match of `_MAYBE` can start, bar the secret names (`_NAME_SEARCH`): its literals,
# the schemes' two spellings, and the characters before a query parameter.
_MAYBE_STARTS = (*_SHAPE_STARTS, "Bearer", "bearer", "Basic", "basic", "://", "?", "&", ";")
_MAYBE_SEARCH: Any = ahocorasick_rs.AhoCorasick(list(_MAYBE_STARTS)) if _LITERAL_SEARCH is not None else None


def _maybe(text: str) -> bool:
    """`_MAYBE.search(text)`, found faster: Python's regex tries every alternative at every
    character (8 MB/s on prose); here one Aho-Corasick pass finds where a match could start
    and the regex is tried there only."""
    if _MAYBE_SEARCH is None:
        return _MAYBE.search(text) is not None
    lower = text.lower()
    if len(lower) != len(text):  # a lower case of another length: positions differ
        return _MAYBE.search(text) is not None
    if "ı" in lower or "ſ" in lower:  # `(?i:…)` takes these for i and s; lower() keeps them
        lower = lower.replace("ı", "i").replace("ſ", "s")
    try:
        starts = _MAYBE_SEARCH.find_matches_as_indexes(text, overlapping=True)
        names = _NAME_SEARCH.find_matches_as_indexes(lower, overlapping=True)
    except UnicodeEncodeError:  # a lone surrogate: not a Rust string
        return _MAYBE.search(text) is not None
    return any(_MAYBE.match(text, at) for _, at, _ in starts) or any(
        _NAME_RESTS[name].match(lower, after) for name, _, after in names
    )


# The members whose string values are a stream's text, spelled over many events.
_TEXT_DELTA = re.compile(
    r'"(?:content|text|delta|reasoning_content|reasoning|thinking|arguments|partial_json|refusal)"\s*:\s*'
    f"({_STRING})",
    re.S,
)


def _decode_string(raw: str) -> str | None:
    if "\\" not in raw:
        return raw[1:-1]
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _encode_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _is_json(text: str) -> bool:
    """Whether `text` is JSON, by the standard library's parser, which reads text nested past
    Python's recursion limit as not JSON (a RecursionError). The garbage collector is paused
    meanwhile, for the reason `analyzer.model.collector_paused` gives (not imported: this
    file is loaded by path where chatcap's other modules may not import)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    finally:
        if enabled:
            gc.enable()
    return True


def _redact_value(value: str, rule: str | None, salt: bytes | None, depth: int) -> str:
    """One decoded JSON string, judged by its key's rule, then as JSON text, then by shape."""
    if not value or PLACEHOLDER.fullmatch(value):
        return value
    if rule == "always":
        scheme = _SCHEMES.fullmatch(value)
        if scheme:
            return scheme.group(1) + token(scheme.group(2), salt)
        return token(value, salt)
    if rule == "shaped" and _looks_random(value):
        return token(value, salt)
    stripped = value.lstrip()
    if stripped[:1] in ("{", "[") and depth < _NESTED_DEPTH and _is_json(value):
        return _redact_json(value, salt, depth + 1)
    return redact_prose(value, salt)


def _json_edits(text: str, start: int, end: int, salt: bytes | None, depth: int = 0) -> list[Edit]:
    """Edits for the JSON in text[start:end]. Only the string tokens near a hit (`_HIT`) are
    decoded and judged; a member name that means a secret hands its value over whole."""
    hits = _hits(text, start, end)
    if not hits:
        return []
    spans = [match.span() for match in _JSON_STRING.finditer(text, start, end)]
    starts = [span[0] for span in spans]
    chosen: set[int] = set()
    for hit in hits:
        n = bisect.bisect_right(starts, hit) - 1
        if n >= 0 and hit < spans[n][1]:
            chosen.add(n)
        elif n + 1 < len(spans):  # between tokens: the next one
            chosen.add(n + 1)
    edits: list[Edit] = []
    done: set[int] = set()
    for n in sorted(chosen):
        if n in done:
            continue
        done.add(n)
        token_start, token_end = spans[n]
        colon = _MEMBER.match(text, token_end, end)
        if colon:  # a member name: its value is judged under the name's rule.
            name = _decode_string(text[token_start:token_end])
            rule = _name_rule(name) if name is not None else None
            value_at = colon.end()
            if n + 1 < len(spans) and spans[n + 1][0] == value_at:
                done.add(n + 1)
                edits += _string_edit(text, spans[n + 1], rule, salt, depth)
            elif rule == "always":
                number = _JSON_NUMBER.match(text, value_at, end)
                if number:  # "pin": 123456
                    edits.append((number.start(), number.end(), _encode_string(token(number.group(), salt))))
            continue
        rule = None
        if n > 0:
            key_start, key_end = spans[n - 1]
            colon = _MEMBER.match(text, key_end, end)
            if colon and colon.end() == token_start:
                name = _decode_string(text[key_start:key_end])
                rule = _name_rule(name) if name is not None else None
        edits += _string_edit(text, (token_start, token_end), rule, salt, depth)
    return edits


def _string_edit(text: str, span: tuple[int, int], rule: str | None, salt: bytes | None, depth: int) -> list[Edit]:
    value = _decode_string(text[span[0] : span[1]])
    if value is None:
        return []
    new = _redact_value(value, rule, salt, depth)
    return [(span[0], span[1], _encode_string(new))] if new != value else []


def _redact_json(text: str, salt: bytes | None, depth: int = 0) -> str:
    return _apply(text, _json_edits(text, 0, len(text), salt, depth))


# -- event streams ---------------------------------------------------------------------------


def _is_stream(text: str) -> bool:
    head = text.lstrip()[:16]
    return head.startswith(("data:", "event:", "id:", "retry:", ":"))


def _stream_edits(text: str, salt: bytes | None) -> list[Edit]:
    """Each line with a hit: a data line's JSON by structure, any other line by shape; then
    each text channel joined across events, for a key split over several chunks."""
    edits: list[Edit] = []
    seen_lines: set[int] = set()
    for hit in _hits(text, 0, len(text)):
        start = max(text.rfind("\n", 0, hit), text.rfind("\r", 0, hit)) + 1
        if start in seen_lines:
            continue
        seen_lines.add(start)
        end = len(text)
        for brk in ("\n", "\r"):
            at = text.find(brk, hit)
            if at != -1:
                end = min(end, at)
        if text.startswith("data:", start, end):
            payload = start + 5 + text.startswith(" ", start + 5, end)
            if text[payload:end].lstrip()[:1] in ("{", "["):
                edits += _json_edits(text, payload, end, salt)
                continue
        edits += [(s + start, e + start, new) for s, e, new in _shape_edits(text[start:end], salt)]
    return _disjoint(_split_secret_edits(text, edits, salt))


def _split_secret_edits(text: str, done: list[Edit], salt: bytes | None) -> list[Edit]:
    """The stream's text judged as a reader sees it, joined across events: a credential
    spelled over several deltas (or one whose context is: `hooks.sl` + `ack.com/...`) goes
    whole; the first delta that held part of it gets the placeholder, the others lose their
    parts. These edits replace the ones made to the same deltas one by one."""
    by_start = {edit[0]: edit for edit in done}
    pieces: list[tuple[int, int, str]] = []
    for match in _TEXT_DELTA.finditer(text):
        value = _decode_string(match.group(1))
        if value:
            pieces.append((match.start(1), match.end(1), value))
    values = [value for _, _, value in pieces]
    joined = "".join(values)
    if len(pieces) < 2 or not _maybe(joined):
        return sorted(by_start.values())
    bounds, at = [], 0
    for value in values:
        bounds.append((at, at + len(value)))
        at += len(value)
    new_values = list(values)
    for secret_start, secret_end, placeholder in reversed(_shape_edits(joined, salt)):
        first = bisect.bisect_right(bounds, (secret_start, math.inf)) - 1
        touched = [n for n in range(max(first, 0), len(bounds)) if bounds[n][0] < secret_end]
        for n in touched:
            a, b = bounds[n]
            cut_from, cut_to = max(secret_start - a, 0), min(secret_end - a, b - a)
            value = new_values[n]
            new_values[n] = value[:cut_from] + (placeholder if n == touched[0] else "") + value[cut_to:]
    for (start, end, value), new in zip(pieces, new_values, strict=True):
        if new != value:
            by_start[start] = (start, end, _encode_string(_redact_value(new, None, salt, 0)))
    return sorted(by_start.values())


# -- the entry points ------------------------------------------------------------------------


def text_edits(text: str, salt: bytes | None = None) -> list[Edit]:
    """Where the credentials in one text are, and what replaces each, in order."""
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return _disjoint(_json_edits(text, 0, len(text), salt))
    if _is_stream(text):
        return _stream_edits(text, salt)
    return _shape_edits(text, salt)


def redact_text(text: str, salt: bytes | None = None) -> str:
    """Credentials out of one text: JSON by its structure (and stays valid JSON), an event
    stream event by event, anything else by shape; no other character changes."""
    return _apply(text, text_edits(text, salt))


def redact_body(
    body: bytes, ends: list[int] | None = None, salt: bytes | None = None
) -> tuple[bytes, list[int] | None]:
    """Credentials out of a body (any bytes: what is not UTF-8 is kept byte for byte), with
    the end offsets of its network reads moved along with the edits (a read that ended
    inside a secret now ends where the placeholder starts)."""
    text = body.decode("utf-8", "surrogateescape")
    edits = text_edits(text, salt)
    if not edits:
        return body, ends
    moves: list[tuple[int, int, int]] = []  # byte start, byte end, new length; in order
    at_char = at_byte = 0
    for start, end, new in edits:
        at_byte += len(text[at_char:start].encode("utf-8", "surrogateescape"))
        old_length = len(text[start:end].encode("utf-8", "surrogateescape"))
        moves.append((at_byte, at_byte + old_length, len(new.encode("utf-8", "surrogateescape"))))
        at_byte += old_length
        at_char = end
    redacted = _apply(text, edits).encode("utf-8", "surrogateescape")
    return redacted, (None if ends is None else _move_ends(ends, moves))


def _move_ends(ends: list[int], moves: list[tuple[int, int, int]]) -> list[int]:
    out = []
    for end in ends:
        shift = 0
        for start, stop, length in moves:
            if end >= stop:
                shift += length - (stop - start)
            elif end > start:  # the read ended inside the secret
                end = start
                break
            else:
                break
        out.append(end + shift)
    return out


def redact_headers(headers: list[tuple[str, str]], salt: bytes | None = None) -> list[tuple[str, str]]:
    """Credential headers replaced whole (an `Authorization` scheme kept); others by shape."""
    return [(name, redact_header(name, value, salt)) for name, value in headers]


def redact_header(name: str, value: str, salt: bytes | None = None) -> str:
    if not value or PLACEHOLDER.fullmatch(value.strip()):
        return value
    if is_secret_header(name):
        return _redact_value(value, "always", salt, 0)
    return redact_prose(value, salt)
