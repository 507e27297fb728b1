"""The strategy docs stay true: the how-to's code runs as written, the concepts page lists every component with
its defaults and every feature."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slsbot_runtime.data.loaders import load_candle_file
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.features.engine import ALL_FEATURES
from slsbot_runtime.strategy.registry import LIBRARY

ROOT = Path(__file__).resolve().parents[4]
HOW_TO = ROOT / "docs" / "how-to" / "write-a-strategy.md"
CONCEPTS = ROOT / "docs" / "concepts" / "strategies.md"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.fixture(scope="module")
def how_to() -> dict:
    namespace: dict = {"__name__": "write_a_strategy"}
    for block in _python_blocks(HOW_TO):
        exec(compile(block, str(HOW_TO), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


def test_the_how_to_component_passes_its_own_parity_test(how_to: dict) -> None:
    history = load_candle_file(ROOT / "data/market/binance-spot-1h-2024/BTC_USDT-1h.feather", "BTC/USDT")
    how_to["test_vwap_trend_step_and_vectorized_agree"](history.slice(0, 3_000))


def test_the_how_to_ensemble_decides_and_names_a_driver(how_to: dict) -> None:
    history = load_candle_file(ROOT / "data/market/binance-spot-1h-2024/BTC_USDT-1h.feather", "BTC/USDT")
    decisions = [how_to["decide"](history.candle(i)) for i in range(300)]
    assert {d.driver for d in decisions} >= {"vwap", "trend"}
    assert how_to["ensemble"].required_features == ("vwap_dist_24",)


def test_the_how_to_error_example_is_the_real_message(how_to: dict) -> None:
    quoted = re.search(r"`(ensemble\.members\[vwap\]\.params\.threshold: [^`]*)`", HOW_TO.read_text())
    assert quoted is not None
    with pytest.raises(ConfigError) as caught:
        how_to["registry"].build("vwap_trend", 1, {"threshold": -1}, name="vwap")
    assert str(caught.value) == quoted.group(1)


def test_the_sketch_in_the_how_to_uses_the_shared_primitives(how_to: dict) -> None:
    sketch = how_to["SmaSketch"](1, 2)
    sketch.spread(10.0)
    assert sketch.spread(20.0) == pytest.approx(20.0 / 15.0 - 1.0)


def _formats(value) -> set[str]:
    forms = {repr(value), str(value)}
    if isinstance(value, float) and value.is_integer():
        forms.add(str(int(value)))
    return forms


def test_the_library_table_lists_every_component_with_its_defaults() -> None:
    rows = {
        line.split("|")[1].strip(" `"): line for line in CONCEPTS.read_text().splitlines() if line.startswith("| `")
    }
    for component in LIBRARY.components():
        assert component.id in rows, f"{component.id} is missing from the library table"
        for name, field in component.Params.model_fields.items():
            written = {f"`{name}`={form}" for form in _formats(field.default)}
            assert any(w in rows[component.id] for w in written), f"{component.id}.{name}={field.default}"


def test_the_feature_table_lists_every_feature() -> None:
    text = CONCEPTS.read_text()
    missing = [name for name in ALL_FEATURES if f"`{name}`" not in text]
    assert not missing
