"""TrainingConfig: frozen, strict, and consistent horizons / quantiles."""

from __future__ import annotations

import pydantic
import pytest

from training.config import BoosterParams, TrainingConfig


def test_defaults_are_consistent_and_frozen():
    config = TrainingConfig()
    assert config.anchor_horizons[0] == 1
    assert config.anchor_horizons[-1] == config.max_horizon
    assert config.interval_levels == (0.05, 0.95)
    with pytest.raises(pydantic.ValidationError):
        config.max_horizon = 10
    assert TrainingConfig.model_validate(config.model_dump()) == config


def test_unknown_fields_are_rejected():
    with pytest.raises(pydantic.ValidationError, match="extra"):
        TrainingConfig(max_horizons=30)
    with pytest.raises(pydantic.ValidationError, match="extra"):
        BoosterParams(depth=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"anchor_horizons": (5, 30)}, "start at 1"),
        ({"anchor_horizons": (1, 10, 5, 30)}, "strictly increasing"),
        ({"max_horizon": 20}, "end at max_horizon"),
        ({"quantiles": (0.05, 0.95)}, "median"),
        ({"quantiles": (0.05, 0.5, 0.9)}, "symmetric"),
        ({"interval_coverage": 0.8}, "needs quantile 0.1"),
        ({"eval_horizons": (1, 45)}, "outside"),
    ],
)
def test_inconsistent_settings_name_the_problem(kwargs, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        TrainingConfig(**kwargs)
