"""The cost of an exchange: reported by the provider, else tokens × a price (the user's
prices file, then genai-prices' bundled data, offline), else none with a reason.

Expected figures are worked out by hand from per-million prices in genai-prices 0.0.61's
data (genai_prices/data.py): OpenAI gpt-4o-mini $0.15 in / $0.075 cached / $0.60 out;
DeepSeek deepseek-chat $0.27 / $1.10 from 00:30 to 16:30 UTC, $0.135 / $0.55 otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

import pytest

import analyzer
from analyzer.cost import Cost, Price, Prices, PricesError, cost_of, load_prices, notice
from analyzer.model import Exchange, Reconstruction, Request, Usage

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "tests" / "data" / "prices"
OPENAI = "https://api.openai.com/v1/chat/completions"
WHEN = datetime(2025, 9, 16, 10, 0, tzinfo=UTC)


def exchange(
    served: str | None, requested: str | None = None, url: str | None = OPENAI, at: datetime | None = WHEN
) -> tuple[Exchange, Reconstruction]:
    request = Request(method="POST", url=url) if url else None
    x = Exchange(id="x", source="test", format="test", request=request, response=None, started_at=at)
    rec = Reconstruction(protocol="openai_chat", streamed=True, served_model=served, requested_model=requested)
    return x, rec


def usage(prompt: int, completion: int, cached: int | None = None, source: str = "reported", **more: int) -> Usage:
    return Usage(
        raw={}, prompt_tokens=prompt, completion_tokens=completion, cached_prompt_tokens=cached, source=source, **more
    )


def per_million(*tokens_times_price: tuple[int, float]) -> float:
    return sum(tokens * price for tokens, price in tokens_times_price) / 1_000_000


# --- reported ---------------------------------------------------------------------------


def test_reported_cost_after_done_wins_seed_001() -> None:
    (x,) = analyzer.load(ROOT / "captures" / "001_abeb99c31e8268f6.txt")
    rec = x.reconstruct()
    assert rec.usage is not None and rec.served_model == "deepseek-v4-flash"  # genai-prices has a price for it
    assert cost_of(x, rec) == Cost(0.0, "reported", "reported by the provider", False)
    # Even a user's price and an estimate do not override what the provider said.
    mine = Prices((Price("deepseek-*", Decimal(9), Decimal(9)),))
    assert cost_of(x, rec, usage(665, 90, source="estimated"), mine).usd == 0.0


def test_openrouter_usage_cost_is_reported() -> None:
    x, rec = exchange("openai/gpt-4o-mini", url="https://openrouter.ai/api/v1/chat/completions")
    rec.usage = Usage(
        raw={"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.000123}, prompt_tokens=10, completion_tokens=5
    )
    assert cost_of(x, rec) == Cost(0.000123, "reported", "reported by the provider", False)


# --- priced by genai-prices ---------------------------------------------------------------


def test_gpt_4o_mini_priced_with_the_cached_token_discount() -> None:
    x, rec = exchange("gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    cost = cost_of(x, rec, usage(1000, 200, cached=400))
    assert cost.source == "priced" and not cost.estimated_tokens
    # 600 uncached prompt tokens at $0.15, 400 cached at $0.075, 200 completion at $0.60.
    assert cost.usd == pytest.approx(per_million((600, 0.15), (400, 0.075), (200, 0.60)))
    assert cost.usd == pytest.approx(0.00024)
    assert cost.detail == (
        f"OpenAI gpt-4o-mini at $0.15 in / $0.075 cached / $0.60 out per M tokens (genai-prices {version('genai-prices')})"
    )


def test_uncached_prompt_costs_the_full_input_price() -> None:
    x, rec = exchange("gpt-4o-mini")
    assert cost_of(x, rec, usage(1000, 200)).usd == pytest.approx(per_million((1000, 0.15), (200, 0.60)))
    assert cost_of(x, rec, usage(1000, 200, cached=0)).usd == pytest.approx(0.00027)


def test_replayed_gpt_4o_mini_exchanges_priced_by_model_name_on_a_local_host() -> None:
    """Recorded through a local replay server: 127.0.0.1 is no provider genai-prices knows,
    so the served model's name alone finds OpenAI's price."""
    exchanges = analyzer.load(ROOT / "captures" / "replayed" / "conversation.jsonl")
    assert len(exchanges) == 7
    for x in exchanges:
        rec = x.reconstruct()
        assert rec.served_model == "gpt-4o-mini-2024-07-18" and rec.usage and rec.usage.source == "reported"
        cost = cost_of(x, rec)
        assert cost.source == "priced"
        assert cost.usd == pytest.approx(
            per_million((rec.usage.prompt_tokens or 0, 0.15), (rec.usage.completion_tokens or 0, 0.60))
        )
        assert cost.detail.startswith("OpenAI gpt-4o-mini at $0.15 in / $0.60 out per M tokens")
        assert "matched by model name alone (127.0.0.1 is not its provider)" in cost.detail


def test_requested_model_used_when_the_served_one_is_unknown() -> None:
    x, rec = exchange("gpt-4o-mini-my-deployment", "gpt-4o-mini")
    assert cost_of(x, rec, usage(1000, 200)).usd == pytest.approx(0.00027)


def test_price_depends_on_when_the_request_was_made() -> None:
    """DeepSeek charged half outside 00:30-16:30 UTC; a naive capture time is taken as UTC."""
    day, night = (datetime(2025, 3, 1, 10, 0, tzinfo=UTC), datetime(2025, 3, 1, 20, 0))
    x, rec = exchange("deepseek-chat", url="https://api.deepseek.com/v1/chat/completions", at=day)
    assert cost_of(x, rec, usage(1000, 1000)).usd == pytest.approx(per_million((1000, 0.27), (1000, 1.10)))
    x, rec = exchange("deepseek-chat", url="https://api.deepseek.com/v1/chat/completions", at=night)
    assert cost_of(x, rec, usage(1000, 1000)).usd == pytest.approx(per_million((1000, 0.135), (1000, 0.55)))


def test_estimated_usage_is_flagged() -> None:
    x, rec = exchange("gpt-4o-mini")
    cost = cost_of(x, rec, usage(1000, 200, source="estimated"))
    assert cost.source == "priced" and cost.estimated_tokens
    assert cost.usd == pytest.approx(0.00027)


def test_usage_defaults_to_the_reconstruction() -> None:
    x, rec = exchange("gpt-4o-mini")
    rec.usage = usage(1000, 200)
    assert cost_of(x, rec).usd == pytest.approx(0.00027)


# --- none -------------------------------------------------------------------------------


def test_no_usage_means_no_cost() -> None:
    x, rec = exchange("gpt-4o-mini")
    cost = cost_of(x, rec)
    assert cost == Cost(None, "none", "no token usage", False)
    assert notice(cost) is None


def test_unknown_model_gets_no_price_and_a_notice() -> None:
    x, rec = exchange("my-private-model", url="http://localhost:8000/v1/chat/completions")
    cost = cost_of(x, rec, usage(1000, 200, source="estimated"))
    assert cost == Cost(None, "none", "no price known for model my-private-model (add it to a prices TOML file)", True)
    found = notice(cost)
    assert found is not None and found.code == "unknown_price" and "my-private-model" in found.message


def test_no_model_name_means_no_price() -> None:
    x, rec = exchange(None, url="http://[::1/v1/chat/completions")  # a URL that does not parse either
    cost = cost_of(x, rec, usage(10, 5))
    assert cost == Cost(None, "none", "no price known: the exchange names no model", False)
    assert notice(cost) is not None


def test_seed_000_self_hosted_deepseek_alias_has_no_price() -> None:
    (x,) = analyzer.load(ROOT / "captures" / "000_d638e083d5fc0320.txt")
    cost = cost_of(x, x.reconstruct())
    assert cost.usd is None and cost.source == "none"
    assert cost.detail == "no price known for model deepseek-v3 or ds-v3 (add it to a prices TOML file)"


def test_cached_tokens_beyond_the_prompt_get_no_price() -> None:
    """Anthropic's own input_tokens leaves cached tokens out; priced as is it would go negative."""
    x, rec = exchange("claude-3-5-sonnet-20241022", url="https://api.anthropic.com/v1/messages")
    cost = cost_of(x, rec, usage(10, 50, cached=2000, cache_write_tokens=300))
    assert cost.usd is None and cost.source == "none"
    found = notice(cost)
    assert found is not None and found.code == "bad_usage" and "2000 cached + 300 cache-written > 10" in found.message


def test_cache_writes_priced_apart() -> None:
    """Anthropic claude-3-5-sonnet: $3 in, $3.75 cache write, $0.30 cache read, $15 out."""
    x, rec = exchange("claude-3-5-sonnet-20241022", url="https://api.anthropic.com/v1/messages")
    cost = cost_of(x, rec, usage(2310, 50, cached=2000, cache_write_tokens=300))
    assert cost.usd == pytest.approx(per_million((10, 3), (2000, 0.30), (300, 3.75), (50, 15)))
    assert "$3.00 in / $0.30 cached / $3.75 cache write / $15.00 out" in cost.detail


# --- the user's prices ------------------------------------------------------------------


def test_prices_file_overrides_genai_prices() -> None:
    prices = load_prices(PRICES / "override.toml")
    x, rec = exchange("gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    cost = cost_of(x, rec, usage(1000, 200, cached=400), prices)
    assert cost.source == "priced"
    assert cost.usd == pytest.approx(per_million((600, 1), (400, 0.5), (200, 2)))
    assert cost.detail == "override.toml: gpt-4o-mini* at $1.00 in / $0.50 cached / $2.00 out per M tokens"


def test_prices_entry_for_a_host_beats_a_general_one() -> None:
    prices = load_prices(PRICES / "override.toml")
    x, rec = exchange("gpt-4o-mini-2024-07-18", url="https://llm.example.com:8443/v1/chat/completions")
    cost = cost_of(x, rec, usage(1000, 200, cached=400), prices)
    # No cache_read in that entry: cached tokens cost the input price.
    assert cost.usd == pytest.approx(per_million((1000, 10), (200, 20)))
    assert cost.detail.startswith("override.toml: GPT-4O-MINI-* on *.example.com at $10.00 in")


def test_prices_file_prices_a_model_genai_prices_does_not_know() -> None:
    prices = load_prices(PRICES / "override.toml")
    x, rec = exchange("My-Model", url="http://localhost:8000/v1/chat/completions")
    assert cost_of(x, rec, usage(1000, 200, cached=400), prices).usd == pytest.approx(
        per_million((1000, 0.25), (200, 1.25))
    )
    # A model in neither gets none, prices file or not.
    x, rec = exchange("other-model")
    assert cost_of(x, rec, usage(1000, 200), prices).source == "none"


def test_prices_file_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    x, rec = exchange("my-model")
    assert cost_of(x, rec, usage(1000, 200)).source == "none"
    monkeypatch.setenv("CHATCAP_PRICES", str(PRICES / "override.toml"))
    assert cost_of(x, rec, usage(1000, 200)).usd == pytest.approx(per_million((1000, 0.25), (200, 1.25)))
    # An explicit Prices wins over the environment.
    assert cost_of(x, rec, usage(1000, 200), Prices()).source == "none"
    monkeypatch.setenv("CHATCAP_PRICES", str(tmp_path / "missing.toml"))
    with pytest.raises(PricesError, match=r"missing\.toml: cannot read prices file"):
        cost_of(x, rec, usage(1000, 200))


def test_example_prices_file_loads() -> None:
    prices = load_prices(ROOT / "docs" / "prices.example.toml")
    assert [p.model for p in prices.entries] == ["Qwen/Qwen3-32B", "ds-v3", "llama-3.1-8b-*", "gpt-4o-mini*"]
    x = analyzer.load(ROOT / "captures" / "tool_calls.jsonl")[0]
    assert cost_of(x, x.reconstruct(), prices=prices) == Cost(
        0.0,
        "priced",
        "prices.example.toml: Qwen/Qwen3-32B on localhost:8000 at $0.00 in / $0.00 out per M tokens",
        False,
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bad_not_toml", "not valid TOML: "),
        ("bad_no_output", "[[price]] #1 (my-model): needs `output`, USD per million tokens"),
        ("bad_negative", "[[price]] #1 (my-model): `input` must be a number of USD per million tokens, not -1"),
        ("bad_string_price", "`input` must be a number of USD per million tokens, not '0.25'"),
        ("bad_unknown_key", "[[price]] #1 (my-model): unknown key 'cached'"),
        ("bad_single_table", "`price` must be an array of tables: write [[price]], not [price]"),
        ("bad_models_table", "unknown key 'models'; prices go in [[price]] tables"),
        ("bad_no_model", "[[price]] #1: needs `model`, a model name"),
    ],
)
def test_bad_prices_file_is_a_clear_error(name: str, reason: str) -> None:
    path = PRICES / f"{name}.toml"
    with pytest.raises(PricesError) as caught:
        load_prices(path)
    assert isinstance(caught.value, analyzer.LoadError)
    message = str(caught.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


# --- offline and lazy -------------------------------------------------------------------

OFFLINE = """
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("network used")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
import analyzer, analyzer.cost
assert "genai_prices" not in sys.modules, "imported on import"
x = analyzer.load("captures/multi_choice_n2.jsonl")[0]
cost = analyzer.cost.cost_of(x, x.reconstruct())
print(cost.source, cost.usd, cost.detail)
"""


def test_pricing_is_offline_and_imports_genai_prices_only_when_used() -> None:
    result = subprocess.run([sys.executable, "-c", OFFLINE], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    # 38 prompt + 30 completion tokens, api.openai.com.
    source, usd, detail = result.stdout.strip().split(" ", 2)
    assert source == "priced" and float(usd) == pytest.approx(per_million((38, 0.15), (30, 0.60)))
    assert detail.startswith("OpenAI gpt-4o-mini at $0.15 in / $0.60 out") and "matched by model name" not in detail
