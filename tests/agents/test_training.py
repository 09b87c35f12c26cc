"""train_agent: determinism, early stopping on validation Sharpe, best weights, checkpoints, logging,
curriculum hook and normalisation statistics saved with the model. Tiny sizes: a few hundred steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

from quant_arena.agents.factory import AgentConfig
from quant_arena.agents.training import (
    CURVE_COLUMNS,
    NORMALIZATION_ATTR,
    NormalizedPolicy,
    get_normalization,
    greedy_policy,
    normalize_observation,
    policy_returns,
    scaler_normalization,
    train_agent,
)
from quant_arena.envs import TradingEnv, TradingVecEnv
from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.features import make_scaler
from tests.agents._market import planted_signal_market

ENV = {"window": 4, "action_scheme": "discrete_targets", "target_exposures": (-1.0, 0.0, 1.0),
       "execution": {"taker_fee": 0.001, "slippage_bps": 2.0}}
AGENT = AgentConfig(
    algo="ppo",
    extractor="mlp",
    extractor_kwargs={"features_dim": 16, "hidden": [16]},
    policy_kwargs={"net_arch": [16]},
    hyperparameters={"n_steps": 64, "batch_size": 64, "n_epochs": 2, "learning_rate": 1e-3},
)
TRAIN = planted_signal_market(700, seed=1)
VAL = planted_signal_market(300, seed=2)


def _train(seed: int = 0, **kwargs):
    args = {"total_timesteps": 512, "eval_freq": 128, "patience": 100, "seed": seed, "progress_bar": False, "score_fn": sharpe_ratio}
    args.update(kwargs)
    return train_agent(
        AGENT,
        lambda: TradingVecEnv(TRAIN, 2, ENV, info="lean", max_episode_steps=100),
        lambda: TradingEnv(VAL, ENV, start="fixed"),
        **args,
    )


def _params(model) -> list[th.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


def test_same_seed_same_weights_and_curve_different_seed_differs():
    a, b, c = _train(seed=3, total_timesteps=256), _train(seed=3, total_timesteps=256), _train(seed=4, total_timesteps=256)
    for pa, pb in zip(_params(a.model), _params(b.model), strict=True):
        assert th.equal(pa, pb)
    cols = [x for x in CURVE_COLUMNS if x != "elapsed_seconds"]
    assert a.learning_curve[cols].equals(b.learning_curve[cols])
    assert any(not th.equal(pa, pc) for pa, pc in zip(_params(a.model), _params(c.model), strict=True))


def test_curve_one_row_per_evaluation_and_best_weights_are_returned():
    res = _train()
    curve = res.learning_curve
    assert list(curve.columns) == list(CURVE_COLUMNS)
    assert curve["timesteps"].tolist() == [128, 256, 384, 512]
    assert not res.stopped_early and res.timesteps == 512
    assert res.best_val_sharpe == pytest.approx(curve["val_sharpe"].max())
    assert res.best_timesteps == int(curve.loc[curve["val_sharpe"].idxmax(), "timesteps"])
    assert curve["best_val_sharpe"].is_monotonic_increasing
    # the returned model is the best one: re-running it on validation gives the best Sharpe
    returns = policy_returns(res.model, TradingEnv(VAL, ENV, start="fixed"))
    assert sharpe_ratio(returns, VAL.bars_per_year) == pytest.approx(res.best_val_sharpe, rel=1e-12)
    assert len(returns) == len(VAL) - ENV["window"]  # the whole validation slice, first decision to last bar


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path):
    # min_delta so large that nothing after the first evaluation counts as an improvement
    res = _train(patience=2, min_delta=1e9, total_timesteps=2048, checkpoint_dir=tmp_path)
    assert res.stopped_early
    assert res.learning_curve["improved"].tolist() == [True, False, False]
    assert res.learning_curve["evals_without_improvement"].tolist() == [0, 1, 2]
    assert res.timesteps < 2048 and res.best_timesteps == 128
    # best_model.zip holds the returned (first-evaluation) weights; latest.zip the last evaluated ones
    best = PPO.load(tmp_path / "best_model.zip", device="cpu")
    latest = PPO.load(tmp_path / "latest.zip", device="cpu")
    for p_best, p_model in zip(best.policy.parameters(), res.model.policy.parameters(), strict=True):
        assert th.equal(p_best, p_model)
    assert any(not th.equal(a, b) for a, b in zip(latest.policy.parameters(), best.policy.parameters(), strict=True))


def test_log_fn_receives_the_curve_with_steps():
    logged: list[tuple[str, float, int]] = []
    res = _train(log_fn=lambda name, value, step: logged.append((name, value, step)), log_prefix="ppo.")
    names = {n for n, _, _ in logged}
    assert {"ppo.val_sharpe", "ppo.best_val_sharpe", "ppo.val_total_return", "ppo.val_max_drawdown"} <= names
    sharpe = [(s, v) for n, v, s in logged if n == "ppo.val_sharpe"]
    assert sharpe == list(zip(res.learning_curve["timesteps"], res.learning_curve["val_sharpe"], strict=True))


def test_curriculum_hook_promotes_the_training_env():
    cur = {"levels": [{"fee_mult": 0.0}, {"fee_mult": 1.0}], "thresholds": [-1e9]}
    holder = {}

    def make_train():
        holder["env"] = TradingVecEnv(TRAIN, 2, {**ENV, "curriculum": cur}, info="lean", max_episode_steps=100)
        return holder["env"]

    res = train_agent(AGENT, make_train, lambda: TradingEnv(VAL, ENV, start="fixed"),
                      total_timesteps=256, eval_freq=128, patience=5, seed=0, score_fn=sharpe_ratio, progress_bar=False)
    assert res.learning_curve["curriculum_level"].tolist() == [1.0, 1.0]
    assert list(holder["env"].level) == [1, 1]


def test_vec_normalize_statistics_travel_with_the_model(tmp_path):
    scaler = make_scaler("zscore")
    scaler.columns, scaler.center, scaler.scale = ["signal"], {"signal": 0.1}, {"signal": 2.0}
    res = _train(total_timesteps=256, normalize_observations=True, normalization=scaler_normalization(scaler))
    stats = get_normalization(res.model)
    assert stats == res.normalization
    assert stats["feature_scaler"]["columns"] == ["signal"] and stats["feature_scaler"]["scale"] == [2.0]
    vn = stats["vec_normalize"]
    assert set(vn["obs_rms"]) == {"market", "account"} and vn["obs_rms"]["market"]["count"] > 1
    # saved inside the SB3 zip and restored by load
    res.model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", device="cpu")
    assert getattr(loaded, NORMALIZATION_ATTR) == stats
    # normalising by hand matches VecNormalize's own transform
    env = TradingEnv(VAL, ENV, start="fixed")
    obs, _ = env.reset()
    ours = normalize_observation(obs, stats)
    theirs = res.model.get_env().normalize_obs({k: v[None] for k, v in obs.items()})
    for key in obs:
        np.testing.assert_allclose(ours[key], theirs[key][0], rtol=1e-5, atol=1e-5)
    # NormalizedPolicy acts on raw observations like the model on normalised ones
    a1, _ = NormalizedPolicy(loaded).predict(obs)
    a2, _ = res.model.predict(ours, deterministic=True)
    assert int(a1) == int(a2)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="patience"):
        _train(patience=0)
    with pytest.raises(ValueError, match="eval_freq"):
        _train(eval_freq=0)
    with pytest.raises(TypeError, match="single gymnasium.Env"):
        train_agent(AGENT, lambda: TradingEnv(TRAIN, ENV), lambda: TradingVecEnv(VAL, 2, ENV),
                    total_timesteps=64, eval_freq=64, patience=1, seed=0, score_fn=sharpe_ratio)


def test_final_evaluation_at_the_budget_is_not_an_early_stop():
    # evaluations at 100 and 200 steps, then a final one when the budget ends (256 steps: two
    # rollouts of 2 x 64); the final one reaches `patience` but training had ended anyway
    res = _train(patience=2, min_delta=1e9, total_timesteps=200, eval_freq=100)
    assert res.learning_curve["timesteps"].tolist() == [100, 200, 256]
    assert res.learning_curve["evals_without_improvement"].tolist() == [0, 1, 2]
    assert not res.stopped_early and res.timesteps == 256


@pytest.mark.parametrize(("algo", "scheme"), [("ppo", "discrete_targets"), ("ppo", "continuous"), ("sac", "continuous"), ("dqn", "discrete")])
def test_greedy_policy_is_exactly_predict(algo, scheme):
    from quant_arena.agents.factory import make_agent

    env = TradingEnv(TRAIN, {**ENV, "action_scheme": scheme}, max_episode_steps=100)
    hyper = {"learning_starts": 16, "buffer_size": 200, "batch_size": 16} if algo != "ppo" else {"n_steps": 32, "batch_size": 32}
    model = make_agent(AgentConfig(algo=algo, extractor="mlp", hyperparameters=hyper, seed=2), env)
    model.learn(64)
    act = greedy_policy(model)
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(200):
        ref, _ = model.predict(obs, deterministic=True)
        ours = act(obs)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype
        np.testing.assert_array_equal(ours, ref)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()


def test_validation_returns_after_a_liquidation_match_run_policy():
    """An episode cut by a liquidation counts the rest of the window as 0 returns, as run_policy does."""
    from quant_arena.evaluation.backtest import run_policy
    from quant_arena.sim import MarketData

    n = 200
    close = 100.0 * np.exp(np.linspace(0.0, np.log(3.0), n))  # the price triples: a 1x short is liquidated
    open_ = np.r_[100.0, close[:-1]]
    data = MarketData.from_arrays(open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close,
                                  np.full(n, 1e6), features=np.zeros((n, 1)))

    class AlwaysShort:
        def predict(self, obs, deterministic=True, **kwargs):
            return np.array(0), None  # target -1.0

    cfg = {**ENV, "execution": {}}
    env = TradingEnv(data, cfg, start="fixed", start_index=10)
    r = policy_returns(AlwaysShort(), env)
    res = run_policy(TradingEnv(data, cfg), lambda obs: 0, 10, n)
    assert res.stop == "liquidation"
    assert len(r) == len(res.returns) == n - 11
    np.testing.assert_allclose(r, res.returns, rtol=1e-12, atol=1e-15)


def test_progress_lines_carry_label_rate_and_eta_every_n_steps(caplog):
    with caplog.at_level("INFO", logger="quant_arena.agents.training"):
        result = _train(total_timesteps=512, progress_every=128, progress_label="fold 0 ppo seed 3")
    lines = [r.getMessage() for r in caplog.records if "env steps" in r.getMessage()]
    assert len(lines) == 512 // 128, lines  # one per 128 env steps (2 envs x 64 steps per rollout)
    for k, line in enumerate(lines, start=1):
        assert line.startswith(f"fold 0 ppo seed 3: {128 * k:,}/512 env steps ({128 * k / 512:.0%})"), line
        assert " steps/s, ETA " in line
        rate = float(line.split(", ")[-2].split(" ")[0].replace(",", ""))
        assert rate > 0
    assert lines[-1].endswith("ETA 0 s")
    assert result.timesteps == 512
    with caplog.at_level("INFO", logger="quant_arena.agents.training"):
        caplog.clear()
        _train(total_timesteps=256)  # no progress_every: no lines
    assert not [r for r in caplog.records if "env steps" in r.getMessage()]


def test_rollout_update_and_validation_times_split_the_learn_time():
    result = _train(total_timesteps=512)
    assert result.seconds > 0
    assert 0 < result.rollout_seconds < result.seconds
    assert 0 < result.eval_seconds < result.seconds
    assert result.update_seconds > 0
    total = result.rollout_seconds + result.update_seconds + result.eval_seconds
    assert total == pytest.approx(result.seconds)
