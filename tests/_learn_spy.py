"""A spy on every ``learn()`` of the models the trainer builds (``agents.training.make_agent``):
per call, the policy weights at its start and at its end. Used to show that a training continues
from the weights another one ended with (synthetic pretraining, then fine-tuning)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import pytest
import torch

from quant_arena.agents import training


def policy_weights(model: Any) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s policy ``state_dict``."""
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    """Bit for bit the same tensors under the same names."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@contextmanager
def spy_learn() -> Iterator[list[tuple[dict, dict]]]:
    """Inside: every model built by the trainer records ``(weights at learn's start, at its end)``
    in the yielded list, one entry per ``learn()`` call, in call order."""
    calls: list[tuple[dict, dict]] = []
    real_make = training.make_agent

    def spy(agent_config, venv):
        model = real_make(agent_config, venv)
        learn = model.learn

        def spied(*args, **kwargs):
            entry = policy_weights(model)
            out = learn(*args, **kwargs)
            calls.append((entry, policy_weights(model)))
            return out

        model.learn = spied
        return model

    mp = pytest.MonkeyPatch()
    mp.setattr(training, "make_agent", spy)
    try:
        yield calls
    finally:
        mp.undo()


#: What the calibration saw and made, and the pretraining's best synthetic-validation Sharpe (``meta``)
PRETRAIN_META = (
    "calibration_rows",
    "calibration_last_timestamp",
    "synthetic_log_return",
    "synthetic_volatility",
    "synthetic_drift",
    "synthetic_regime_share",
    "pretrain_best_val_sharpe",
)


def assert_same_pretraining(
    a: tuple[pd.DataFrame, dict, list], b: tuple[pd.DataFrame, dict, list]
) -> None:
    """Two pretrained trainings, each ``(learning curve, meta, spy_learn calls)``, pretrained bit
    for bit alike: the weights the pretraining (the first ``learn``) ended with, the pretraining's
    learning curve (but its wall-clock column) and :data:`PRETRAIN_META`."""
    assert same_weights(a[2][0][1], b[2][0][1])
    pre = [
        x[0].query("phase == 'pretrain'").drop(columns=["elapsed_seconds"])
        for x in (a, b)
    ]
    pd.testing.assert_frame_equal(pre[0], pre[1], check_exact=True)
    for key in PRETRAIN_META:
        assert a[1][key] == b[1][key], key
