"""The cost in USD of one exchange, labelled with where the figure came from.

A cost the provider reported wins (OpenRouter's `usage.cost`, seed 001's gateway sending
`{"cost": ...}` after `[DONE]`). Otherwise the tokens are priced: by the user's prices file
first (`load_prices`, or the file named by `CHATCAP_PRICES`), then by the data bundled
with genai-prices (https://github.com/pydantic/genai-prices), read offline: chatcap never
calls its `UpdatePrices`, so nothing is fetched. A model nobody has a price for gets no
cost and a notice, never a guess.

Token counts are read OpenAI-style, as `Usage` normalises them: `prompt_tokens` is the
whole prompt, tokens read from a cache (`cached_prompt_tokens`) and written to one
(`cache_write_tokens`) included; genai-prices' `input_tokens` means the same. Anthropic's
own `input_tokens` leaves both out, so its usage must be normalised before it gets here;
a prompt smaller than its cached parts gets no price and says so.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from analyzer.errors import LoadError
from analyzer.metrics import reported_cost
from analyzer.model import Exchange, Notice, Reconstruction, Usage, as_utc, created_unit_ms

if TYPE_CHECKING:
    from genai_prices.types import ModelInfo, PriceCalculation, Provider, TieredPrices

PRICES_ENV = "CHATCAP_PRICES"
MILLION = Decimal(1_000_000)

_NO_USAGE = "no token usage"
_UNKNOWN = "no price known"
_BAD_USAGE = "token counts do not add up: "


@dataclass(slots=True, frozen=True)
class Cost:
    """What one exchange cost in USD, and where that figure came from."""

    usd: float | None
    # "reported" (the provider said so), "priced" (tokens × a price) or "none".
    source: str
    # In words: who reported it, which price was used, or why there is none.
    detail: str
    # Priced from token counts chatcap estimated from the text, not ones the provider reported.
    estimated_tokens: bool


class PricesError(LoadError):
    """A prices file could not be read: not TOML, or an entry that is not a price."""


@dataclass(slots=True, frozen=True)
class Price:
    """One entry of a prices file: USD per million tokens for a model (on a host)."""

    model: str  # a model name, case-insensitive; `*` and `?` are wildcards
    input: Decimal  # prompt tokens neither read from nor written to a cache
    output: Decimal  # completion tokens, reasoning included
    cache_read: Decimal | None = None  # None: priced as input
    cache_write: Decimal | None = None  # None: priced as input
    host: str | None = None  # only requests to this host (name or name:port, wildcards allowed)

    def matches(self, model: str, host: str | None, hostport: str | None) -> bool:
        if self.host is not None:
            hosts = [h for h in (host, hostport) if h]
            if not any(fnmatch.fnmatchcase(h, self.host.lower()) for h in hosts):
                return False
        return fnmatch.fnmatchcase(model.lower(), self.model.lower())


@dataclass(slots=True, frozen=True)
class Prices:
    """The user's prices, in file order; `source` names the file for messages."""

    entries: tuple[Price, ...] = ()
    source: str = "prices"

    def find(self, model: str, host: str | None = None, hostport: str | None = None) -> Price | None:
        """The entry for `model` on `host`: one naming the host beats one that does not, then file order."""
        general = None
        for price in self.entries:
            if price.matches(model, host, hostport):
                if price.host is not None:
                    return price
                general = general or price
        return general


_PRICE_KEYS = {"model", "host", "input", "output", "cache_read", "cache_write"}


def load_prices(path: str | os.PathLike[str]) -> Prices:
    """Read a prices TOML file (format: docs/prices.example.toml); `PricesError` if it is not one."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise PricesError(source, f"cannot read prices file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PricesError(source, f"not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"price"})
    if unknown:
        raise PricesError(source, f"unknown key {unknown[0]!r}; prices go in [[price]] tables")
    entries = document.get("price", [])
    if not isinstance(entries, list):
        raise PricesError(source, "`price` must be an array of tables: write [[price]], not [price]")
    return Prices(tuple(_price(source, n, entry) for n, entry in enumerate(entries, 1)), source)


def _price(source: str, n: int, entry: Any) -> Price:
    if not isinstance(entry, dict):
        raise PricesError(source, "not a table", f"[[price]] #{n}")
    model, host = entry.get("model"), entry.get("host")
    named = isinstance(model, str) and model.strip()
    where = f"[[price]] #{n} ({model.strip()})" if named else f"[[price]] #{n}"
    unknown = sorted(set(entry) - _PRICE_KEYS)
    if unknown:
        raise PricesError(source, f"unknown key {unknown[0]!r} (expected: {', '.join(sorted(_PRICE_KEYS))})", where)
    if not named:
        raise PricesError(source, "needs `model`, a model name", where)
    if host is not None and (not isinstance(host, str) or not host.strip()):
        raise PricesError(source, "`host` must be a host name", where)
    for key in ("input", "output"):
        if key not in entry:
            raise PricesError(source, f"needs `{key}`, USD per million tokens", where)

    def usd(key: str) -> Decimal | None:
        value = entry.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != value:
            raise PricesError(source, f"`{key}` must be a number of USD per million tokens, not {value!r}", where)
        return Decimal(str(value))

    input_usd, output_usd = usd("input"), usd("output")
    assert input_usd is not None and output_usd is not None
    return Price(model.strip(), input_usd, output_usd, usd("cache_read"), usd("cache_write"), host and host.strip())


def cost_of(exchange: Exchange, rec: Reconstruction, usage: Usage | None = None, prices: Prices | None = None) -> Cost:
    """The cost of one exchange: as reported, else priced from its tokens, else none (and why).

    `usage` defaults to `rec.usage` (pass an estimate to price that); `prices` defaults to
    the file `CHATCAP_PRICES` names, if any."""
    reported = reported_cost(rec)
    if reported is not None:
        return Cost(reported, "reported", "reported by the provider", False)
    usage = usage if usage is not None else rec.usage
    if usage is None:
        return Cost(None, "none", _NO_USAGE, False)
    estimated = usage.source == "estimated"
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return Cost(None, "none", _NO_USAGE, estimated)
    cached, written = usage.cached_prompt_tokens or 0, usage.cache_write_tokens or 0
    if cached + written > usage.prompt_tokens:
        detail = f"{_BAD_USAGE}{cached} cached + {written} cache-written > {usage.prompt_tokens} prompt tokens"
        return Cost(None, "none", detail, estimated)

    names = list(dict.fromkeys(m for m in (rec.served_model, rec.requested_model) if m))
    if not names:
        return Cost(None, "none", f"{_UNKNOWN}: the exchange names no model", estimated)
    parts = _url(exchange.request.url if exchange.request else None)
    host = parts.hostname if parts else None
    hostport = parts.netloc.rpartition("@")[2].lower() if parts else None

    if prices is None:
        prices = _prices_from_env()
    if prices is not None:
        for name in names:
            price = prices.find(name, host, hostport)
            if price is not None:
                return _user_cost(price, prices.source, usage, estimated)

    api_url = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts and parts.scheme and parts.netloc else None
    for name in names:
        found = _genai_model(name.strip(), api_url)
        if found is not None:
            model, provider, by_host = found
            return _genai_cost(model, provider, usage, _when(exchange, rec), estimated, by_host, host)

    return Cost(None, "none", f"{_UNKNOWN} for model {' or '.join(names)} (add it to a prices TOML file)", estimated)


def notice(cost: Cost) -> Notice | None:
    """A warning for a cost that should have been there: an unknown model or inconsistent token counts."""
    if cost.source != "none":
        return None
    if cost.detail.startswith(_UNKNOWN):
        return Notice("unknown_price", cost.detail)
    if cost.detail.startswith(_BAD_USAGE):
        return Notice("bad_usage", f"no cost: {cost.detail}")
    return None


def _user_cost(price: Price, source: str, usage: Usage, estimated: bool) -> Cost:
    cached, written = usage.cached_prompt_tokens or 0, usage.cache_write_tokens or 0
    prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
    cache_read = price.input if price.cache_read is None else price.cache_read
    cache_write = price.input if price.cache_write is None else price.cache_write
    total = (prompt - cached - written) * price.input + cached * cache_read + written * cache_write
    total += completion * price.output
    rates = [f"{_usd(price.input)} in"]
    if cached:
        rates.append(f"{_usd(cache_read)} cached")
    if written:
        rates.append(f"{_usd(cache_write)} cache write")
    rates.append(f"{_usd(price.output)} out")
    where = f" on {price.host}" if price.host else ""
    detail = f"{os.path.basename(source)}: {price.model}{where} at {' / '.join(rates)} per M tokens"
    return Cost(float(total / MILLION), "priced", detail, estimated)


@functools.lru_cache(maxsize=4096)
def _genai_model(model: str, api_url: str | None) -> tuple[ModelInfo, Provider, bool] | None:
    """genai-prices' entry for `model`: at the provider `api_url` points to, else by the name alone
    (gateways and self-hosted servers are no provider it knows). True when found by URL."""
    from genai_prices import Usage as GenaiUsage
    from genai_prices import calc_price

    for url in (api_url, None) if api_url else (None,):
        try:
            found = calc_price(GenaiUsage(), model, provider_api_url=url)
        except LookupError:
            continue
        return found.model, found.provider, url is not None
    return None


def _genai_cost(
    model: ModelInfo,
    provider: Provider,
    usage: Usage,
    when: datetime | None,
    estimated: bool,
    by_host: bool,
    host: str | None,
) -> Cost:
    from genai_prices import Usage as GenaiUsage
    from genai_prices import __version__

    tokens = GenaiUsage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cache_read_tokens=usage.cached_prompt_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    try:
        calculation = model.calc_price(tokens, provider, genai_request_timestamp=when)
    except ValueError as exc:  # token counts genai-prices cannot split, e.g. more audio than input
        return Cost(None, "none", f"{_BAD_USAGE}{exc}", estimated)
    detail = f"{provider.name} {model.id} at {_rates(calculation, usage)} per M tokens (genai-prices {__version__})"
    if host and not by_host:
        detail += f", matched by model name alone ({host} is not its provider)"
    return Cost(float(calculation.total_price), "priced", detail, estimated)


def _rates(calculation: PriceCalculation, usage: Usage) -> str:
    """The per-million prices this exchange paid, e.g. `$0.15 in / $0.075 cached / $0.60 out`."""
    price, prompt = calculation.model_price, usage.prompt_tokens or 0
    rates = [f"{_usd(_rate(price.input_mtok, prompt))} in"]
    if usage.cached_prompt_tokens and price.cache_read_mtok is not None:
        rates.append(f"{_usd(_rate(price.cache_read_mtok, prompt))} cached")
    if usage.cache_write_tokens and price.cache_write_mtok is not None:
        rates.append(f"{_usd(_rate(price.cache_write_mtok, prompt))} cache write")
    rates.append(f"{_usd(_rate(price.output_mtok, prompt))} out")
    text = " / ".join(rates)
    if price.requests_kcount:
        text += f" + {_usd(price.requests_kcount)} per 1K requests"
    return text


def _rate(price: Decimal | TieredPrices | None, prompt_tokens: int) -> Decimal:
    """The rate that applies: a tier applies to all tokens once the prompt is larger than its start."""
    if price is None:
        return Decimal(0)
    if isinstance(price, Decimal):
        return price
    applied = price.base
    for tier in price.tiers:  # sorted by start
        if prompt_tokens > tier.start:
            applied = tier.price
    return applied


def _usd(value: Decimal) -> str:
    """`$0.60`, `$0.075`, `$3.00`: at least two decimals, no trailing zeros beyond them."""
    text = f"{value:f}"
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _when(exchange: Exchange, rec: Reconstruction) -> datetime | None:
    """When the request was made, in UTC (prices change with the date, DeepSeek's with the hour), or None: now."""
    if exchange.started_at is not None:
        return as_utc(exchange.started_at)  # naive: taken as UTC; None (now) past datetime's years
    if isinstance(rec.created, int | float) and rec.created > 0:
        try:
            return datetime.fromtimestamp(rec.created * created_unit_ms(rec.created) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _url(url: str | None) -> SplitResult | None:
    try:
        return urlsplit(url) if url else None
    except ValueError:  # e.g. an unclosed [ in an IPv6 host
        return None


def _prices_from_env() -> Prices | None:
    """The prices file `CHATCAP_PRICES` names, read again only when it changes."""
    path = os.environ.get(PRICES_ENV, "").strip()
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise PricesError(path, f"cannot read prices file ({PRICES_ENV}): {exc.strerror or exc}") from None
    return _load_cached(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> Prices:
    return load_prices(path)
