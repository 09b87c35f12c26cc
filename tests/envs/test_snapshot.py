"""TradingEnv.snapshot / restore / step_target: carrying a run over to an env built on more (or
fewer) bars continues it bit for bit (what paper trading does at every new bar)."""

from __future__ import annotations

import numpy as np
import pytest

from quant_arena.envs import TradingEnv, TradingEnvConfig
from quant_arena.sim import MarketData
from tests._markets import market

FIELDS = (
    "cash",
    "units",
    "equity",
    "pnl",
    "fee",
    "spread",
    "impact",
    "funding",
    "filled",
    "unfilled",
    "n_trades",
)


def _env(frame, n, **over):
    cfg = TradingEnvConfig.model_validate(
        {
            "window": 5,
            "action_scheme": "discrete_targets",
            "target_exposures": (-1.0, 0.0, 0.5, 2.0),
            "start": "fixed",
            "start_index": 20,
            "max_episode_steps": None,
            "execution": {
                "taker_fee": 0.001,
                "slippage_bps": 3.0,
                "fill_delay": 2,
                "max_leverage": 3.0,
            },
            **over,
        }
    )
    cols = [c for c in frame.columns if c.startswith("f")]
    return TradingEnv(MarketData.from_frame(frame.iloc[:n], feature_columns=cols), cfg)


def _same(a, b):
    if isinstance(a, dict):
        return all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


@pytest.mark.parametrize("observation", ["dict", "flat"])
def test_a_restored_env_continues_bit_for_bit(observation):
    frame = market(260, 4, n_features=3, frame=True, timeframe="1h", vol=0.02)
    frame["funding_rate"] = np.where(
        np.arange(260) % 8 == 0, 1e-4, np.nan
    )  # funding every 8 bars
    full = _env(frame, 260, observation=observation)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=200)
    full.reset(options={"start": 20})
    for a in actions[:90]:
        full.step(int(a))
    snap = full.snapshot()
    t = full.account.t
    for length in (t + 2, 260):  # just one bar more than the snapshot's, or all of them
        other = _env(frame, length, observation=observation)
        obs = other.restore(snap)
        assert other.account.t == t
        assert all(
            getattr(other.account, f) == getattr(full.account, f) for f in FIELDS
        )
        ref = _env(frame, 260, observation=observation)
        ref.reset(options={"start": 20})
        for a in actions[:89]:
            ref.step(int(a))
        ref_obs, *_ = ref.step(int(actions[89]))
        assert _same(obs, ref_obs)
        for a in actions[90 : 90 + (length - t - 1)]:
            got = other.step_target(other.target_of(int(a)))
            want, *_ = ref.step(int(a))
            assert _same(got, want)
            assert all(
                getattr(other.account, f) == getattr(ref.account, f) for f in FIELDS
            )
    assert snap["Q"].shape == (
        2,
    )  # fill_delay 2: the order decided one bar ago is in the queue
    assert np.isfinite(snap["Q"]).any()


def test_target_of_is_the_step_table():
    frame = market(100, 1, n_features=2, frame=True, timeframe="1h")
    env = _env(frame, 100)
    assert [env.target_of(i) for i in range(4)] == [-1.0, 0.0, 0.5, 2.0]
    cont = _env(frame, 100, action_scheme="continuous", execution={"max_leverage": 2.0})
    assert cont.target_of(np.array([0.25], dtype=np.float32)) == 0.5
    assert cont.target_of(np.array([3.0], dtype=np.float32)) == 2.0


def test_a_bad_snapshot_is_refused():
    frame = market(100, 2, n_features=2, frame=True, timeframe="1h")
    env = _env(frame, 100)
    env.reset(options={"start": 20})
    snap = env.snapshot()
    short = _env(frame, 30)
    with pytest.raises(
        ValueError, match=r"sits on bar 20, outside this env's data|outside"
    ):
        bad = dict(snap)
        bad["I"] = snap["I"].copy()
        bad["I"][0] = 50
        short.restore(bad)
    one = _env(frame, 100, execution={"fill_delay": 1, "max_leverage": 3.0})
    with pytest.raises(
        ValueError, match="order queue holds 2 bars, this env's fill_delay is 1"
    ):
        one.restore(snap)
    with pytest.raises(ValueError, match=r"lacks \['E'\]"):
        env.restore({k: v for k, v in snap.items() if k != "E"})
