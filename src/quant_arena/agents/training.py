"""Training an agent with validation-Sharpe early stopping, checkpoints and saved normalisation.

:func:`train_agent` builds the configured model (:func:`~quant_arena.agents.factory.make_agent`)
on a training environment and calls ``learn`` with a :class:`ValidationCallback` that, every
``eval_freq`` environment steps, runs the current deterministic policy once through the
validation environment, scores its per-step returns with the injected ``score_fn(returns,
periods_per_year)`` (the experiment passes :func:`quant_arena.evaluation.metrics.sharpe_ratio`:
the "validation Sharpe" below) and:

- keeps the best weights seen so far (restored into the model at the end, so the returned model
  is the best-on-validation one, not the last one);
- stops training after ``patience`` evaluations in a row without an improvement of more than
  ``min_delta``;
- writes ``latest.zip`` and, on improvement, ``best_model.zip`` into ``checkpoint_dir`` (when
  given);
- reports the score to the training env's curriculum (``report_score``) when it has one;
- records the training reward: the mean over the last episodes (``train_episode_reward_mean``,
  NaN until an episode ends) and the mean reward per env step since the previous evaluation
  (``train_reward_mean``, always defined);
- logs the learning curve through an injected ``log_fn(name, value, step=...)`` (e.g.
  ``mlflow.log_metric``): this module imports neither Kedro nor MLflow.

Example::

    from quant_arena.agents import AgentConfig, train_agent
    from quant_arena.envs import TradingEnv, TradingVecEnv
    from quant_arena.evaluation.metrics import sharpe_ratio

    result = train_agent(
        AgentConfig(algo="ppo", extractor="mlp"),
        lambda: TradingVecEnv(train_data, 4, env_cfg, info="lean"),
        lambda: TradingEnv(val_data, env_cfg, start="fixed", max_episode_steps=None),
        total_timesteps=50_000, eval_freq=5_000, patience=5, seed=0, score_fn=sharpe_ratio,
    )
    result.model.save("ppo.zip")          # normalisation statistics travel inside the zip
    result.learning_curve                 # one row per evaluation

Determinism: on CPU, the same config, data and ``seed`` give the same weights and the same
learning curve (tested like SB3's ``test_deterministic_training_common``). The validation
rollout consumes no random numbers (deterministic actions, fixed start).

Normalisation statistics: with ``normalize_observations=True`` the training env is wrapped in
SB3's ``VecNormalize`` (observations only) and its running mean/variance at the best evaluation
are stored; extra statistics (e.g. the fitted feature scaler's, from
:func:`scaler_normalization`) can be passed in ``normalization``. Either way they are attached to
the model as the attribute ``quant_arena_normalization``, which SB3's ``save`` writes into the
model zip and ``load`` restores (see :func:`get_normalization`, :func:`normalize_observation`,
:class:`NormalizedPolicy`).
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecMonitor,
    VecNormalize,
    is_vecenv_wrapped,
)

from quant_arena.agents.factory import AgentConfig, make_agent

__all__ = [
    "NORMALIZATION_ATTR",
    "CURVE_COLUMNS",
    "LogFn",
    "NormalizedPolicy",
    "ObservationNormalizer",
    "ProgressCallback",
    "ScoreFn",
    "TrainingResult",
    "ValidationCallback",
    "attach_normalization",
    "get_normalization",
    "greedy_policy",
    "normalize_observation",
    "observation_normalizer",
    "policy_returns",
    "scaler_normalization",
    "train_agent",
]

#: Model attribute holding the observation-normalisation statistics (saved in the SB3 zip).
NORMALIZATION_ATTR = "quant_arena_normalization"

#: Columns of :attr:`TrainingResult.learning_curve`, one row per evaluation.
CURVE_COLUMNS: tuple[str, ...] = (
    "timesteps",
    "val_sharpe",
    "val_total_return",
    "val_max_drawdown",
    "best_val_sharpe",
    "improved",
    "evals_without_improvement",
    "train_episode_reward_mean",
    "train_reward_mean",
    "curriculum_level",
    "elapsed_seconds",
)

LogFn = Callable[..., Any]
#: ``score_fn(returns, periods_per_year) -> float``: the validation score of per-step simple returns.
ScoreFn = Callable[[np.ndarray, float], float]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- normalisation


def attach_normalization(model: BaseAlgorithm, stats: Mapping[str, Any] | None) -> None:
    """Store ``stats`` on ``model`` so that ``model.save`` writes them into the zip."""
    setattr(model, NORMALIZATION_ATTR, None if stats is None else dict(stats))


def get_normalization(model: Any) -> dict[str, Any] | None:
    """The normalisation statistics saved with ``model`` (None when it has none)."""
    return getattr(model, NORMALIZATION_ATTR, None)


def scaler_normalization(scaler: Any, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """JSON-friendly statistics of a fitted :class:`~quant_arena.features.FeatureScaler`.

    Recorded with the model so that whoever feeds it new raw features knows the transform that
    was fitted on the training window: ``(x - center) / scale`` per column. ``columns``: the
    model's feature columns, in its observation order (default: every fitted column).
    """
    train_end = getattr(scaler, "train_end", None)
    cols = list(scaler.columns) if columns is None else list(columns)
    return {
        "kind": "feature_scaler",
        "scaler": getattr(scaler, "kind", type(scaler).__name__),
        "columns": cols,
        "center": [float(scaler.center[c]) for c in cols],
        "scale": [float(scaler.scale[c]) for c in cols],
        "train_end": None if train_end is None else pd.Timestamp(train_end).isoformat(),
        "n_train_rows": int(getattr(scaler, "n_train_rows", 0)),
    }


def _vec_normalize_stats(vn: VecNormalize) -> dict[str, Any]:
    rms = vn.obs_rms
    if isinstance(rms, dict):
        obs = {k: {"mean": r.mean.tolist(), "var": r.var.tolist(), "count": float(r.count)} for k, r in rms.items()}
    else:
        obs = {"": {"mean": rms.mean.tolist(), "var": rms.var.tolist(), "count": float(rms.count)}}
    return {"kind": "vec_normalize", "clip_obs": float(vn.clip_obs), "epsilon": float(vn.epsilon), "obs_rms": obs}


def normalize_observation(obs: Any, stats: Mapping[str, Any] | None) -> Any:
    """Apply saved ``vec_normalize`` statistics to a raw observation (dict or array).

    ``(obs - mean) / sqrt(var + epsilon)`` clipped to ``+-clip_obs``, as ``VecNormalize`` does.
    Any other kind of statistics (or None) returns ``obs`` unchanged: a feature scaler is applied
    to the data before the environment is built, not to observations.
    """
    if not stats:
        return obs
    vn = stats if stats.get("kind") == "vec_normalize" else stats.get("vec_normalize")
    if not vn:
        return obs
    clip, eps = float(vn["clip_obs"]), float(vn["epsilon"])

    def one(x: np.ndarray, s: Mapping[str, Any]) -> np.ndarray:
        mean = np.asarray(s["mean"], dtype=np.float32)
        std = np.sqrt(np.asarray(s["var"], dtype=np.float32) + np.float32(eps))
        return np.clip((np.asarray(x, dtype=np.float32) - mean) / std, -clip, clip).astype(np.float32)

    if isinstance(obs, Mapping):
        return {k: one(v, vn["obs_rms"][k]) if k in vn["obs_rms"] else v for k, v in obs.items()}
    return one(obs, vn["obs_rms"][""])


class ObservationNormalizer:
    """``normalize_obs(obs)`` with saved ``vec_normalize`` statistics (what ``run_policy`` takes)."""

    def __init__(self, stats: Mapping[str, Any]) -> None:
        self.stats = stats

    def normalize_obs(self, obs: Any) -> Any:
        return normalize_observation(obs, self.stats)


def observation_normalizer(model: Any) -> ObservationNormalizer | None:
    """An :class:`ObservationNormalizer` for a model trained with ``VecNormalize``, else None."""
    stats = get_normalization(model)
    if not stats or not (stats.get("kind") == "vec_normalize" or stats.get("vec_normalize")):
        return None
    return ObservationNormalizer(stats)


class NormalizedPolicy:
    """``model.predict`` on observations normalised with the model's saved statistics.

    Use it to run a model trained with ``normalize_observations=True`` on raw observations (e.g.
    in a backtest): ``NormalizedPolicy(model).predict(obs, deterministic=True)``.
    """

    def __init__(self, model: BaseAlgorithm, stats: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.stats = get_normalization(model) if stats is None else stats
        self.observation_space = model.observation_space
        self.action_space = model.action_space

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True, **kwargs: Any):
        """Same signature and result as SB3's ``predict``."""
        obs = normalize_observation(observation, self.stats)
        return self.model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic, **kwargs)


# --------------------------------------------------------------------------- rollouts


def _is_recurrent(model: Any) -> bool:
    return type(model).__name__ == "RecurrentPPO" or type(getattr(model, "model", None)).__name__ == "RecurrentPPO"


def _is_maskable(model: Any) -> bool:
    inner = getattr(model, "model", model)
    return type(inner).__name__ == "MaskablePPO"


def greedy_policy(model: Any) -> Callable[[Any], Any] | None:
    """A lean ``obs -> action`` callable computing exactly ``model.predict(obs, deterministic=True)[0]``.

    The same torch computation as SB3's ``predict`` (``policy._predict`` under ``no_grad`` on the
    observation as a tensor, then the same reshape and clipping / unscaling) without its
    per-call bookkeeping; about 1.5-2x faster per step, which matters in the validation and
    test rollouts. None for RecurrentPPO and MaskablePPO (they need states / masks: use
    ``predict``). The policy is put in evaluation mode when the callable is made.
    """
    if _is_recurrent(model) or _is_maskable(model) or not hasattr(model, "policy"):
        return None
    policy = model.policy
    space = model.action_space
    box = isinstance(space, gym.spaces.Box)
    squash = bool(getattr(policy, "squash_output", False))
    shape = space.shape
    device = policy.device
    policy.set_training_mode(False)

    def act(obs: Any) -> Any:
        with th.no_grad():
            if isinstance(obs, Mapping):
                t = {k: th.as_tensor(v, device=device).unsqueeze(0) for k, v in obs.items()}
            else:
                t = th.as_tensor(obs, device=device).unsqueeze(0)
            a = policy._predict(t, deterministic=True).cpu().numpy().reshape((-1, *shape))
        if box:
            a = policy.unscale_action(a) if squash else np.clip(a, space.low, space.high)
        return a[0]

    return act


def policy_returns(
    model: Any,
    env: gym.Env,
    *,
    seed: int | None = None,
    obs_transform: Callable[[Any], Any] | None = None,
) -> np.ndarray:
    """Run ``model``'s deterministic policy through one episode of ``env``; per-step simple returns.

    ``env`` is a single gymnasium env reporting the account value as ``info["equity"]`` (as
    ``TradingEnv`` does); ``returns[k] = equity_{k+1} / equity_k - 1`` for each step. Envs
    without ``equity`` in ``info`` are treated as giving log-return rewards
    (``returns = expm1(reward)``). Recurrent (RecurrentPPO) state and MaskablePPO masks are
    handled. ``obs_transform`` (e.g. VecNormalize's ``normalize_obs``) is applied to every
    observation before ``predict``.
    """
    recurrent = _is_recurrent(model)
    masked = _is_maskable(model) and hasattr(env, "action_masks")
    fast = greedy_policy(model)
    obs, info = env.reset(seed=seed)
    equity = [float(info.get("equity", 1.0))]
    use_equity = "equity" in info
    rewards: list[float] = []
    state = None
    episode_start = np.ones((1,), dtype=bool)
    terminated = False
    while True:
        x = obs_transform(obs) if obs_transform is not None else obs
        kwargs: dict[str, Any] = {}
        if masked:
            kwargs["action_masks"] = env.action_masks()
        if fast is not None:
            action = fast(x)
        elif recurrent:
            action, state = model.predict(x, state=state, episode_start=episode_start, deterministic=True)
            episode_start = np.zeros((1,), dtype=bool)
        else:
            action, _ = model.predict(x, deterministic=True, **kwargs)
        if isinstance(env.action_space, gym.spaces.Discrete):
            action = int(np.asarray(action).reshape(-1)[0])
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(float(reward))
        if use_equity:
            equity.append(float(info["equity"]))
        if terminated or truncated:
            break
    if terminated:
        # A liquidation or bankruptcy ended the run before the window's last bar: the account is
        # out, so the remaining bars earn 0 (run_policy's convention; the Sharpe is over the window).
        base = getattr(env, "unwrapped", env)
        data, account = getattr(base, "data", None), getattr(base, "account", None)
        if data is not None and account is not None:
            rest = max(len(data) - 1 - int(account.t), 0)
            equity.extend([equity[-1]] * rest)
            rewards.extend([0.0] * rest)
    if use_equity:
        eq = np.asarray(equity)
        prev = np.where(eq[:-1] > 0, eq[:-1], np.nan)
        out = eq[1:] / prev - 1.0
        return np.where(np.isfinite(out), out, 0.0)  # after a wipe-out equity stays 0: no further return
    return np.expm1(np.asarray(rewards))


# --------------------------------------------------------------------------- callback


def _unwrap_vec_normalize(venv: VecEnv) -> VecNormalize | None:
    env: Any = venv
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize):
            return env
        env = env.venv
    return None


def _report_score(venv: VecEnv, score: float) -> int | None:
    """Call ``report_score(score)`` on the training env(s) when they have a curriculum; the level after."""
    env: Any = venv
    while isinstance(env, VecEnvWrapper) and not hasattr(env, "report_score"):
        env = env.venv
    if hasattr(env, "report_score"):  # TradingVecEnv (or any VecEnv that implements it)
        env.report_score(score)
        level = getattr(env, "level", None)
        return int(np.max(level)) if level is not None else None
    if isinstance(env, VecEnv) and env.has_attr("report_score"):
        env.env_method("report_score", score)
        return int(max(env.get_attr("level"))) if env.has_attr("level") else None
    return None


class ValidationCallback(BaseCallback):
    """Every ``eval_freq`` env steps: validation Sharpe, best-weights tracking, early stopping.

    See the module docstring. ``evaluate()`` must return the validation per-step simple returns
    of the current policy.
    """

    def __init__(
        self,
        evaluate: Callable[[], np.ndarray],
        *,
        score_fn: ScoreFn,
        eval_freq: int,
        patience: int,
        periods_per_year: float,
        min_delta: float = 0.0,
        checkpoint_dir: Path | None = None,
        log_fn: LogFn | None = None,
        log_prefix: str = "",
        curriculum: bool = True,
    ) -> None:
        super().__init__(verbose=0)
        if eval_freq < 1:
            raise ValueError(f"eval_freq={eval_freq} must be >= 1 env step")
        if patience < 1:
            raise ValueError(f"patience={patience} must be >= 1 evaluation")
        self.evaluate = evaluate
        self.score_fn = score_fn
        self.eval_freq = int(eval_freq)
        self.patience = int(patience)
        self.periods_per_year = float(periods_per_year)
        self.min_delta = float(min_delta)
        self.checkpoint_dir = checkpoint_dir
        self.log_fn = log_fn
        self.log_prefix = log_prefix
        self.curriculum = curriculum
        self.rows: list[dict[str, Any]] = []
        self.best_sharpe = -math.inf
        self.best_timesteps = 0
        self.best_state: dict[str, Any] | None = None
        self.best_normalization: dict[str, Any] | None = None
        self.stopped_early = False
        self._no_improve = 0
        self._next_eval = self.eval_freq
        self._last_eval_step = -1
        self._t0 = time.perf_counter()
        self._reward_sum = 0.0  # training rewards since the last evaluation (every env copy)
        self._reward_n = 0
        self.rollout_seconds = 0.0  # collecting env steps (SB3's collect_rollouts), evaluations excluded
        self.eval_seconds = 0.0  # validation rollouts
        self._rollout_t0: float | None = None

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._next_eval = self.num_timesteps + self.eval_freq

    def _on_rollout_start(self) -> None:
        self._rollout_t0 = time.perf_counter()

    def _on_rollout_end(self) -> None:
        if self._rollout_t0 is not None:
            self.rollout_seconds += time.perf_counter() - self._rollout_t0
            self._rollout_t0 = None

    def _on_step(self) -> bool:
        rewards = self.locals.get("rewards")
        if rewards is not None:
            self._reward_sum += float(np.sum(rewards))
            self._reward_n += int(np.size(rewards))
        if self.num_timesteps < self._next_eval:
            return True
        while self._next_eval <= self.num_timesteps:
            self._next_eval += self.eval_freq
        return self.run_evaluation()

    def _on_training_end(self) -> None:
        # the final weights get their evaluation too (unless training stopped on no improvement);
        # training has ended on its budget, so this evaluation cannot "stop early"
        if not self.stopped_early and self._last_eval_step != self.num_timesteps:
            self.run_evaluation(final=True)

    def run_evaluation(self, final: bool = False) -> bool:
        """Evaluate now; returns False when training should stop (never for the ``final`` one)."""
        t_eval = time.perf_counter()
        returns = self.evaluate()
        spent = time.perf_counter() - t_eval
        self.eval_seconds += spent
        if self._rollout_t0 is not None:  # an evaluation inside a rollout is not rollout time
            self._rollout_t0 += spent
        self._last_eval_step = self.num_timesteps
        if returns.size >= 2:
            sharpe = self.score_fn(returns, self.periods_per_year)
        else:
            sharpe = float("nan")
        log_eq = np.cumsum(np.log1p(np.maximum(returns, -1.0 + 1e-12))) if returns.size else np.zeros(1)
        total = float(np.expm1(log_eq[-1]))
        max_dd = float(-np.expm1((log_eq - np.maximum.accumulate(np.maximum(log_eq, 0.0))).min()))
        score = sharpe if math.isfinite(sharpe) else -math.inf
        improved = score > self.best_sharpe + self.min_delta or self.best_state is None
        if improved:
            self.best_sharpe = score
            self.best_timesteps = self.num_timesteps
            self.best_state = copy.deepcopy(self.model.policy.state_dict())
            vn = _unwrap_vec_normalize(self.training_env)
            self.best_normalization = _vec_normalize_stats(vn) if vn is not None else None
            self._no_improve = 0
        else:
            self._no_improve += 1
        level = _report_score(self.training_env, score) if self.curriculum else None
        ep_info = getattr(self.model, "ep_info_buffer", None)
        ep_rew = float(np.mean([e["r"] for e in ep_info])) if ep_info else float("nan")
        step_rew = self._reward_sum / self._reward_n if self._reward_n else float("nan")
        self._reward_sum, self._reward_n = 0.0, 0
        row = {
            "timesteps": int(self.num_timesteps),
            "val_sharpe": float(sharpe),
            "val_total_return": total,
            "val_max_drawdown": max_dd,
            "best_val_sharpe": float(self.best_sharpe),
            "improved": bool(improved),
            "evals_without_improvement": int(self._no_improve),
            "train_episode_reward_mean": ep_rew,
            "train_reward_mean": step_rew,
            "curriculum_level": float("nan") if level is None else float(level),
            "elapsed_seconds": time.perf_counter() - self._t0,
        }
        self.rows.append(row)
        if self.log_fn is not None:
            for key in ("val_sharpe", "val_total_return", "val_max_drawdown", "best_val_sharpe", "train_episode_reward_mean", "train_reward_mean"):
                value = row[key]
                if math.isfinite(value):
                    self.log_fn(f"{self.log_prefix}{key}", float(value), step=row["timesteps"])
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            self.model.save(self.checkpoint_dir / "latest.zip")
            if improved:
                self.model.save(self.checkpoint_dir / "best_model.zip")
        if self._no_improve >= self.patience and not final:
            self.stopped_early = True
            return False
        return True


class ProgressCallback(BaseCallback):
    """A log line every ``every`` env steps: steps done, env-steps/s and ETA.

    ``label`` prefixes each line (e.g. ``"fold 0 ppo_mlp seed 1"``) so that the lines of
    trainings running side by side (Kedro's ParallelRunner) stay readable. The rate is over the
    whole run so far (validation rollouts included), the ETA assumes the budget is spent (early
    stopping ends sooner). Lines go to ``log`` (default: this module's logger at INFO), e.g.::

        fold 0 ppo_mlp seed 1: 100,000/250,000 env steps (40%), 21,350 steps/s, ETA 7 s
    """

    def __init__(self, total_timesteps: int, every: int, label: str = "", log: Callable[[str], Any] | None = None) -> None:
        super().__init__(verbose=0)
        if every < 1:
            raise ValueError(f"every={every} must be >= 1 env step")
        self.total = int(total_timesteps)
        self.every = int(every)
        self.label = label
        self.log = log if log is not None else logger.info
        self.lines: list[str] = []
        self._t0 = time.perf_counter()
        self._start = 0
        self._next = self.every

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = self.num_timesteps
        self._next = self.num_timesteps + self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            while self._next <= self.num_timesteps:
                self._next += self.every
            self.lines.append(self._line())
            self.log(self.lines[-1])
        return True

    def _line(self) -> str:
        done = self.num_timesteps - self._start
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        rate = done / elapsed
        left = max(self.total - done, 0)
        eta = left / rate if rate > 0 else float("inf")
        prefix = f"{self.label}: " if self.label else ""
        return (
            f"{prefix}{self.num_timesteps:,}/{self.total:,} env steps ({min(done / max(self.total, 1), 1.0):.0%}), "
            f"{rate:,.0f} steps/s, ETA {_duration(eta)}"
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# --------------------------------------------------------------------------- train_agent


@dataclass
class TrainingResult:
    """What :func:`train_agent` returns.

    Attributes:
        model: the trained model, holding the BEST weights on validation (not the last ones),
            with :data:`NORMALIZATION_ATTR` set.
        learning_curve: one row per evaluation, columns :data:`CURVE_COLUMNS`.
        best_val_sharpe: validation Sharpe of the returned weights (``-inf`` if never finite).
        best_timesteps: env steps trained when those weights were evaluated.
        stopped_early: True when ``patience`` evaluations passed without improvement.
        timesteps: env steps actually trained.
        normalization: the statistics attached to the model (None when there are none).
        checkpoint_dir: where checkpoints were written (None when not asked).
        seconds: wall time of ``learn`` (evaluations included).
        rollout_seconds: time spent collecting env steps (policy forward passes, env steps,
            buffer writes); ``seconds - rollout_seconds - eval_seconds`` is gradient updates.
        eval_seconds: time spent in validation rollouts.
    """

    model: BaseAlgorithm
    learning_curve: pd.DataFrame
    best_val_sharpe: float
    best_timesteps: int
    stopped_early: bool
    timesteps: int
    normalization: dict[str, Any] | None = None
    checkpoint_dir: Path | None = field(default=None)
    seconds: float = 0.0
    rollout_seconds: float = 0.0
    eval_seconds: float = 0.0

    @property
    def update_seconds(self) -> float:
        """Time spent outside rollouts and evaluations: gradient updates (and SB3's bookkeeping)."""
        return max(self.seconds - self.rollout_seconds - self.eval_seconds, 0.0)


def _as_vec_env(env: Any) -> VecEnv:
    if isinstance(env, VecEnv):
        # episode statistics for the learning curve, unless the env is monitored already
        monitored = is_vecenv_wrapped(env, VecMonitor) or (isinstance(env, DummyVecEnv) and all(isinstance(e, Monitor) for e in env.envs))
        return env if monitored else VecMonitor(env)
    if isinstance(env, gym.Env):
        return DummyVecEnv([lambda: Monitor(env)])
    raise TypeError(f"train_env_factory must return a gymnasium.Env or an SB3 VecEnv, got {type(env).__name__}")


def _periods_per_year(env: gym.Env) -> float:
    data = getattr(getattr(env, "unwrapped", env), "data", None)
    ppy = getattr(data, "bars_per_year", None)
    return float(ppy) if ppy else 1.0


def train_agent(
    agent_config: AgentConfig | Mapping[str, Any],
    train_env_factory: Callable[[], gym.Env | VecEnv],
    val_env_factory: Callable[[], gym.Env],
    *,
    total_timesteps: int,
    eval_freq: int,
    patience: int,
    seed: int,
    score_fn: ScoreFn,
    checkpoint_dir: str | Path | None = None,
    progress_bar: bool | None = None,
    progress_every: int | None = None,
    progress_label: str = "",
    log_fn: LogFn | None = None,
    log_prefix: str = "",
    min_delta: float = 0.0,
    periods_per_year: float | None = None,
    normalize_observations: bool = False,
    normalization: Mapping[str, Any] | None = None,
    curriculum: bool = True,
    initial_weights: Mapping[str, Any] | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> TrainingResult:
    """Train ``agent_config`` with validation-Sharpe early stopping (see the module docstring).

    Args:
        agent_config: the agent (an :class:`AgentConfig` or its mapping); its ``seed`` is
            replaced by ``seed``.
        train_env_factory: returns the training env: a ``gymnasium.Env`` (wrapped in
            ``Monitor`` + ``DummyVecEnv``) or an SB3 ``VecEnv`` such as ``TradingVecEnv``.
        val_env_factory: returns the validation env, a single ``gymnasium.Env`` whose one
            episode covers the validation slice (``TradingEnv`` with ``start="fixed"`` and no
            ``max_episode_steps``); it must report ``info["equity"]``.
        total_timesteps: env steps to train at most.
        eval_freq: env steps between evaluations (summed over the vector env's copies).
        patience: evaluations without improvement before stopping.
        seed: seeds the model, torch, numpy, the envs and the validation rollouts.
        score_fn: ``score_fn(returns, periods_per_year)``, the validation score of the policy's
            per-step returns (e.g. :func:`quant_arena.evaluation.metrics.sharpe_ratio`); higher is better.
        checkpoint_dir: write ``latest.zip`` / ``best_model.zip`` there at each evaluation.
        progress_bar: SB3's progress bar; None = only when stderr is a terminal.
        progress_every: log a :class:`ProgressCallback` line (steps, env-steps/s, ETA) every
            this many env steps; None = no lines.
        progress_label: prefix of those lines (e.g. ``"fold 0 ppo_mlp seed 1"``).
        log_fn: ``log_fn(name, value, step=timesteps)`` per curve metric (e.g. ``mlflow.log_metric``).
        log_prefix: prepended to logged names (e.g. ``"ppo."``).
        min_delta: an improvement must exceed this Sharpe difference.
        periods_per_year: annualisation of the validation Sharpe; default: the validation env's
            ``data.bars_per_year`` (1 when it has none).
        normalize_observations: wrap the training env in ``VecNormalize`` (observations only);
            the validation rollout uses the same statistics.
        normalization: extra statistics to save with the model (e.g. :func:`scaler_normalization`).
        curriculum: report each validation Sharpe to the training env's ``report_score``.
        initial_weights: a policy ``state_dict`` of the same architecture (e.g. a pretrained
            model's ``policy.state_dict()``) loaded into the new model before ``learn``: training
            continues from those weights (the optimizer, replay buffer and step count start
            afresh). None (default): the seed's fresh network.
        callbacks: extra SB3 callbacks run after the validation callback at every step (e.g. the
            arena league's self-play snapshots, :mod:`quant_arena.study.arena`).

    Returns:
        :class:`TrainingResult`.
    """
    if total_timesteps < 1:
        raise ValueError(f"total_timesteps={total_timesteps} must be >= 1")
    config = agent_config if isinstance(agent_config, AgentConfig) else AgentConfig.model_validate(dict(agent_config))
    config = config.model_copy(update={"seed": int(seed)})
    venv = _as_vec_env(train_env_factory())
    if normalize_observations:
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False)
    val_env = val_env_factory()
    if isinstance(val_env, VecEnv):
        raise TypeError("val_env_factory must return a single gymnasium.Env (one episode = the validation slice)")
    ppy = float(periods_per_year) if periods_per_year is not None else _periods_per_year(val_env)
    model = make_agent(config, venv)
    if initial_weights is not None:
        model.policy.load_state_dict(initial_weights)
    vn = _unwrap_vec_normalize(venv)
    transform = vn.normalize_obs if vn is not None else None

    def evaluate() -> np.ndarray:
        return policy_returns(model, val_env, seed=seed, obs_transform=transform)

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    callback = ValidationCallback(
        evaluate,
        score_fn=score_fn,
        eval_freq=eval_freq,
        patience=patience,
        periods_per_year=ppy,
        min_delta=min_delta,
        checkpoint_dir=ckpt,
        log_fn=log_fn,
        log_prefix=log_prefix,
        curriculum=curriculum,
    )
    if progress_bar is None:
        progress_bar = bool(getattr(sys.stderr, "isatty", lambda: False)())
    callbacks = [callback, *callbacks]  # extra callbacks (e.g. a self-play league's snapshots) after the validation
    if progress_every is not None:
        callbacks.append(ProgressCallback(int(total_timesteps), int(progress_every), progress_label))
    t_learn = time.perf_counter()
    model.learn(total_timesteps=int(total_timesteps), callback=CallbackList(callbacks), progress_bar=progress_bar)
    seconds = time.perf_counter() - t_learn
    if callback.best_state is not None:
        model.policy.load_state_dict(callback.best_state)
    stats: dict[str, Any] | None = None
    if callback.best_normalization is not None or normalization is not None:
        stats = {}
        if normalization is not None:
            stats.update({"feature_scaler" if normalization.get("kind") == "feature_scaler" else "extra": dict(normalization)})
        if callback.best_normalization is not None:
            stats["vec_normalize"] = callback.best_normalization
        if vn is not None and callback.best_normalization is not None:
            _restore_vec_normalize(vn, callback.best_normalization)
    attach_normalization(model, stats)
    if ckpt is not None and callback.best_state is not None:
        model.save(ckpt / "best_model.zip")
    val_env.close()
    curve = pd.DataFrame(callback.rows, columns=list(CURVE_COLUMNS))
    return TrainingResult(
        model=model,
        learning_curve=curve,
        best_val_sharpe=float(callback.best_sharpe),
        best_timesteps=int(callback.best_timesteps),
        stopped_early=callback.stopped_early,
        timesteps=int(model.num_timesteps),
        normalization=stats,
        checkpoint_dir=ckpt,
        seconds=seconds,
        rollout_seconds=callback.rollout_seconds,
        eval_seconds=callback.eval_seconds,
    )


def _restore_vec_normalize(vn: VecNormalize, stats: Mapping[str, Any]) -> None:
    """Put the best evaluation's running statistics back into ``vn`` (they match the best weights)."""
    rms = vn.obs_rms
    saved = stats["obs_rms"]
    items: Sequence[tuple[Any, Any]] = list(rms.items()) if isinstance(rms, dict) else [("", rms)]
    for key, r in items:
        s = saved[key]
        r.mean = np.asarray(s["mean"], dtype=np.float64)
        r.var = np.asarray(s["var"], dtype=np.float64)
        r.count = float(s["count"])
