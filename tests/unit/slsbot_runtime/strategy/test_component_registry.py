from __future__ import annotations

import pytest

from slsbot.api import EnsembleMember
from slsbot_runtime.domain.errors import ConfigError
from slsbot_runtime.strategy.base import StrategyComponent, StrategyParams
from slsbot_runtime.strategy.library import SmaCross
from slsbot_runtime.strategy.registry import LIBRARY, ComponentRegistry, build_component


def test_builds_a_library_component_from_a_member_spec() -> None:
    member = EnsembleMember(name="trend", strategy="sma_cross", params={"fast": 5, "slow": 20})
    component = build_component(member)
    assert isinstance(component, SmaCross)
    assert (component.params.fast, component.params.slow) == (5, 20)


def test_builds_from_id_version_and_params_with_defaults() -> None:
    component = build_component("sma_cross", 1, None)
    assert (component.params.fast, component.params.slow) == (10, 30)


def test_each_build_is_a_fresh_component() -> None:
    assert build_component("sma_cross") is not build_component("sma_cross")


def test_unknown_id_names_the_member_field_and_lists_known_ids() -> None:
    member = EnsembleMember(name="trend", strategy="sma_crosss")
    with pytest.raises(ConfigError) as caught:
        build_component(member)
    message = str(caught.value)
    assert message.startswith("ensemble.members[trend].strategy: unknown strategy 'sma_crosss'")
    assert "did you mean sma_cross?" in message
    for known in LIBRARY.ids:
        assert known in message


def test_unknown_version_names_the_strategy_field_and_the_versions() -> None:
    with pytest.raises(ConfigError, match=r"^ensemble\.members\[t\]\.strategy: sma_cross has no interface version 7"):
        build_component("sma_cross", 7, name="t")
    with pytest.raises(ConfigError, match=r"ensemble\.members\[t\]\.version to one of 1"):
        build_component("sma_cross", 7, name="t")


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"fast": 0}, "fast", "greater than or equal to 1"),
        ({"fast": 40}, "slow", "must be greater than fast (40)"),
        ({"fast": 10, "slow": 10}, "slow", "must be greater than fast (10)"),
        ({"slow": "soon"}, "slow", "valid integer"),
        ({"fats": 3}, "fats", "unknown parameter of sma_cross; it accepts fast, slow"),
    ],
)
def test_bad_params_name_the_params_field(params: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_component(EnsembleMember(name="trend", strategy="sma_cross", params=params))
    message = str(caught.value)
    assert f"ensemble.members[trend].params.{field}: " in message
    assert fragment in message


def test_params_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"ensemble\.members\[x\]\.params: must be a mapping"):
        build_component("sma_cross", 1, [("fast", 3)], name="x")  # type: ignore[arg-type]


class _Echo(StrategyComponent):
    id = "echo"

    class Params(StrategyParams):
        pass

    warmup = 0

    def on_candle(self, candle, features):  # pragma: no cover - never called here
        raise NotImplementedError


def test_an_extended_registry_knows_more_and_the_library_is_unchanged() -> None:
    extended = LIBRARY.extended(_Echo)
    assert isinstance(extended.build("echo"), _Echo)
    with pytest.raises(ConfigError, match="unknown strategy 'echo'"):
        build_component("echo")
    with pytest.raises(ValueError, match="registered twice"):
        extended.extended(_Echo)


def test_every_library_component_has_documented_params_and_builds_with_defaults() -> None:
    assert len(LIBRARY.ids) == len(LIBRARY.components())
    for component in LIBRARY.components():
        for name, field in component.Params.model_fields.items():
            assert field.description, f"{component.id}.{name} has no description"
        built = ComponentRegistry([component]).build(component.id)
        assert built.warmup >= 1
