"""The arena league's pieces on a tiny walk-forward fold: the curriculum promotes only when a
validation score clears the level's threshold, the self-play pool holds frozen copies (weights
not shared with the learner), and an agent's solo score is a TradingEnv backtest of its policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant_arena.envs.config import CurriculumConfig
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.evaluation.metrics import compute_metrics
from quant_arena.study.arena import (
    ArenaConfig,
    LeagueTrainingEnv,
    SelfPlayPool,
    solo_scores,
    train_league_agent,
)
from quant_arena.study.data import market_data
from quant_arena.study.walk_forward.fold import fold_data, prepare_fold
from tests.pipelines.walk_forward import _tiny

torch.set_num_threads(1)

CURRICULUM = {
    "levels": [
        {"fee_mult": 0.0, "slippage_mult": 0.0, "opponent_strength": 0.0},
        {"fee_mult": 0.5, "slippage_mult": 0.5, "opponent_strength": 0.0},
        {"fee_mult": 1.0, "slippage_mult": 1.0, "opponent_strength": 1.0},
    ],
    "thresholds": [0.5, 1.0],
}


def params(**over) -> dict:
    p = _tiny.params(agents=("ppo_mlp",), seeds=(0,))
    p.pop("stress")  # the arena refuses it (it injects no scenarios)
    p.update(
        league={"snapshot_every": 32, "n_opponents": 2, "pool_size": 3},
        matches={"n_matches": 2, "length": 40, "n_bootstrap": 20},
        curriculum=CURRICULUM,
        plain_counterparts=False,
    )
    p.update(over)
    return p


@pytest.fixture(scope="module")
def fold():
    config = ArenaConfig.model_validate(params())
    art, frame, _ = prepare_fold(_tiny.market_features(), 0, config)
    return config, art, frame, fold_data(art, frame)


@pytest.fixture(scope="module")
def trained(fold):
    config, art, frame, data = fold
    return train_league_agent(data, art["features"], frame, "ppo_mlp", 0, config)


def _env(fold, curriculum, strength=0.5, pool=None):
    config, art, frame, data = fold
    md = market_data(
        frame,
        art["features"].columns,
        end=data.window("train")[1],
        periods_per_year=data.periods_per_year,
    )
    pool = pool or SelfPlayPool(["flat"], [])
    return LeagueTrainingEnv(
        md,
        config.env,
        pool,
        2,
        CurriculumConfig.model_validate(curriculum) if curriculum else None,
        strength,
        32,
    )


def test_promotion_only_when_the_threshold_is_cleared(fold):
    env = _env(fold, CURRICULUM)
    fee = fold[0].env.execution.taker_fee
    env.reset(seed=0)
    assert env.level == 0 and env._env.arena.cfg.execution.taker_fee == 0.0
    assert not env.report_score(0.49) and env.level == 0
    assert env.report_score(0.5) and env.level == 1
    assert not env.report_score(0.99) and env.level == 1
    env.reset(seed=1)
    assert env._env.arena.cfg.execution.taker_fee == pytest.approx(0.5 * fee)
    assert env.report_score(1.0) and env.level == 2
    assert not env.report_score(1e9) and env.level == 2  # the last level stays
    env.reset(seed=2)
    assert env._env.arena.cfg.execution.taker_fee == pytest.approx(fee)


def test_opponent_strength_of_the_level_decides_who_is_drawn(fold):
    class Probe(SelfPlayPool):
        def __init__(self):
            super().__init__(["flat"], [])
            self.drawn = []

        def draw(self, rng, strength):
            self.drawn.append(strength)
            return super().draw(rng, strength)

    pool = Probe()
    pool.league = [
        type("P", (), {"predict": lambda self, obs, deterministic=True: (1, None)})()
    ]
    env = _env(fold, CURRICULUM, pool=pool)
    env.reset(seed=0)
    assert pool.drawn == [0.0, 0.0]
    env.report_score(0.5)
    env.report_score(1.0)
    env.reset(seed=0)
    assert pool.drawn[-2:] == [1.0, 1.0]
    rng = np.random.default_rng(0)
    assert all(pool.draw(rng, 1.0) is pool.league[0] for _ in range(20))
    assert all(pool.draw(rng, 0.0) == "flat" for _ in range(20))


def test_training_reaches_a_level_only_through_validation_scores(fold):
    config, art, frame, data = fold
    never = ArenaConfig.model_validate(
        params(curriculum={**CURRICULUM, "thresholds": [1e9, 1e9]})
    )
    always = ArenaConfig.model_validate(
        params(curriculum={**CURRICULUM, "thresholds": [-1e9, -1e9]})
    )
    _, curve_n, meta_n = train_league_agent(
        data, art["features"], frame, "ppo_mlp", 0, never
    )
    _, curve_a, meta_a = train_league_agent(
        data, art["features"], frame, "ppo_mlp", 0, always
    )
    assert meta_n["level_reached"] == 0 and set(curve_n["curriculum_level"]) == {0.0}
    # one promotion per validation evaluation: 1 after the first, 2 after the second
    assert meta_a["level_reached"] == 2 and list(curve_a["curriculum_level"])[:2] == [
        1.0,
        2.0,
    ]


def test_the_pool_gets_frozen_copies_not_the_learners_weights(fold, trained):
    model, _, meta = trained
    assert meta["snapshots"] == meta["timesteps"] // 32
    pool = SelfPlayPool(["flat"], [], pool_size=2)
    for _ in range(3):
        pool.add(model.policy)
    assert len(pool.snapshots) == 2 and pool.n_snapshots == 3
    snap = pool.snapshots[-1]
    learner = dict(model.policy.named_parameters())
    for name, p in snap.named_parameters():
        assert not p.requires_grad
        assert p.data_ptr() != learner[name].data_ptr()
        torch.testing.assert_close(p, learner[name].detach())
    before = {k: v.clone() for k, v in snap.state_dict().items()}
    with torch.no_grad():
        for p in model.policy.parameters():
            p.add_(1.0)  # the learner moves on...
    try:
        for k, v in snap.state_dict().items():  # ...the snapshot does not
            torch.testing.assert_close(v, before[k])
        sample = model.observation_space.sample()
        obs = (
            {k: np.zeros_like(v) for k, v in sample.items()}
            if isinstance(sample, dict)
            else np.zeros_like(sample)
        )
        assert snap.predict(obs, deterministic=True)[0] in range(3)
    finally:
        with torch.no_grad():
            for p in model.policy.parameters():
                p.sub_(1.0)


def test_solo_score_is_a_trading_env_backtest_of_the_policy(fold, trained):
    config, art, frame, data = fold
    model = trained[0]
    row = solo_scores({"ppo_mlp": model}, data, art["features"], frame, 0, config).iloc[
        0
    ]
    t0, t1 = data.window("test")
    md = market_data(
        frame, art["features"].columns, end=t1, periods_per_year=data.periods_per_year
    )
    env = TradingEnv(
        md,
        config.env,
        start="fixed",
        start_index=t0,
        max_episode_steps=None,
        max_drawdown=None,
    )
    obs, info = env.reset(seed=0)
    equity = [info["equity"]]
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(model.predict(obs, deterministic=True)[0])
        equity.append(info["equity"])
        done = term or trunc
    eq = np.asarray(equity)
    assert len(eq) == t1 - t0
    m = compute_metrics(eq[1:] / eq[:-1] - 1.0, periods_per_year=data.periods_per_year)
    assert row["kind"] == "agent" and row["strategy"] == "ppo_mlp"
    assert row["total_return"] == pytest.approx(
        eq[-1] / eq[0] - 1.0, rel=1e-9, abs=1e-12
    )
    assert row["sharpe"] == pytest.approx(m["sharpe"], rel=1e-9, abs=1e-12)
    assert row["max_drawdown"] == pytest.approx(m["max_drawdown"], rel=1e-9, abs=1e-12)


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"league.fixed_opponents"):
        ArenaConfig.model_validate(params(league={"fixed_opponents": ["bogus"]}))
    with pytest.raises(ValueError, match=r"agents\[ppo_mlp\].env"):
        p = params()
        p["agents"][0]["env"] = {"window": 4}
        ArenaConfig.model_validate(p)
    with pytest.raises(ValueError, match="thresholds"):
        ArenaConfig.model_validate(
            params(curriculum={**CURRICULUM, "thresholds": [0.0]})
        )
    with pytest.raises(ValueError, match="clash with matches.fixed_players"):
        p = params()
        p["agents"][0]["name"] = "flat"
        ArenaConfig.model_validate(p)
    for option, value in (("forecast_features", True), ("pretrain", {"timesteps": 64})):
        p = params()
        p["agents"][0][option] = value
        with pytest.raises(ValueError, match=rf"agents\[ppo_mlp\]\.{option}: a walk_forward agent option"):
            ArenaConfig.model_validate(p)


def test_the_defaults_validate_and_build_a_league():
    # the arena pipeline is built from the defaults when no project is found (Airflow's DagBag
    # parses every registered pipeline from another folder): they must validate
    config = ArenaConfig()
    assert config.agents and all(not a.env for a in config.agents)
