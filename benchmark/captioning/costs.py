"""Token and cost accounting for VLM calls.

Prices are USD per million tokens (input, output), list prices of the Gemini API for
text/image input on the paid tier (early 2025). They change: pass your own table with
``load_prices`` (JSON or YAML ``{model: {input_per_million: .., output_per_million: ..}}``).
A model missing from the table is still counted in tokens; its cost is reported as unknown.

Example:
    >>> usage = Usage()
    >>> usage.add("gemini-2.0-flash", 1_000_000, 100_000, DEFAULT_PRICES)
    >>> round(usage.cost_usd, 2)
    0.14
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

from benchmark.errors import InputError


@dataclass(frozen=True)
class Price:
    """USD per million input and output tokens."""

    input_per_million: float
    output_per_million: float


DEFAULT_PRICES: dict[str, Price] = {
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.5-pro": Price(1.25, 10.00),
    "gemini-1.5-flash": Price(0.075, 0.30),
    "gemini-1.5-pro": Price(1.25, 5.00),
}


def load_prices(path: str | Path) -> dict[str, Price]:
    """The default table updated with the entries of a JSON / YAML file."""
    import yaml  # YAML is a superset of JSON: one parser reads both

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("file not found", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"not valid JSON/YAML ({exc})", source=str(path)) from exc
    if not isinstance(raw, dict):
        raise InputError("expected a mapping {model: {input_per_million, output_per_million}}", source=str(path))
    prices = dict(DEFAULT_PRICES)
    for model, entry in raw.items():
        try:
            prices[str(model)] = Price(float(entry["input_per_million"]), float(entry["output_per_million"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError(
                "needs numeric input_per_million and output_per_million", source=str(path), record=str(model)
            ) from exc
    return prices


def call_cost(model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, Price]) -> float | None:
    """USD for one call, ``None`` when the model has no price."""
    price = prices.get(model)
    if price is None:
        return None
    return (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1e6


@dataclass
class Usage:
    """Running totals of billed calls (calls that got an answer; failed HTTP calls are free)."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def add(self, model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, Price]) -> None:
        """Count one answered call."""
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        cost = call_cost(model, input_tokens, output_tokens, prices)
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += cost

    def to_dict(self) -> dict:
        """Plain dict for JSON reports."""
        return asdict(self)
