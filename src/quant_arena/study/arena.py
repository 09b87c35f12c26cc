"""The arena league (``kedro run --pipeline=arena``): agents trained by self-play in the arena,
then played against each other on unseen bars and scored alone against the baselines.

Per walk-forward fold (the walk_forward study's folds, feature selection + scaler fitted on
TRAIN only, :func:`quant_arena.study.walk_forward.fold.prepare_fold`) and per seed:

1. **League training by self-play** (:func:`train_league_agent`): each league agent learns in a
   :class:`LeagueTrainingEnv` on the training rows: an
   :class:`~quant_arena.envs.arena_env.ArenaSingleAgentEnv` (relative, zero-sum reward) whose
   opponents are drawn at every episode start from a :class:`SelfPlayPool`: frozen copies of the
   learner (a snapshot every ``league.snapshot_every`` env steps, :class:`SnapshotCallback`),
   the frozen final copies of the league agents trained before it (same fold and seed), and
   the weak fixed policies (``league.fixed_opponents``). The validation Sharpe on the validation
   window (the walk_forward trainer's early stopping, in a plain ``TradingEnv``) keeps the best
   weights.
2. **Curriculum** (``curriculum``, the envs' :class:`~quant_arena.envs.config.CurriculumConfig`):
   levels of costs, leverage, episode length, volatility regime and opponent strength
   (``opponent_strength``: the share of opponents drawn from the frozen pool); the training env
   moves up one level when a validation Sharpe clears the level's threshold. The learning curve
   records the level at every evaluation.
3. **Matches on the TEST window** (:func:`quant_arena.evaluation.league.run_matches`): every
   league agent (deterministic) and the fixed players in one ``ArenaEnv`` with the baselines'
   execution costs, ``matches.n_matches`` sub-windows; the league table
   (:func:`quant_arena.evaluation.league.league_table`) pools the matches of every fold and seed.
4. **Solo scores**: each agent's policy alone in the single-asset ``TradingEnv`` on the test
   window (the walk_forward fold unit's ``score``: the same kernel and costs as the baselines of
   :mod:`quant_arena.agents.baselines`), next to the baselines on the same bars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from quant_arena.agents.training import observation_normalizer, scaler_normalization
from quant_arena.envs import OPPONENT_POLICIES
from quant_arena.envs.arena_env import ArenaSingleAgentEnv
from quant_arena.envs.config import ArenaEnvConfig, CurriculumConfig, TradingEnvConfig
from quant_arena.envs.trading_env import TradingEnv
from quant_arena.evaluation.league import league_table, run_matches
from quant_arena.evaluation.metrics import bootstrap_sharpe_ci, sharpe_ratio
from quant_arena.evaluation.overfitting import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
)
from quant_arena.market.errors import DataError
from quant_arena.sim import MarketData
from quant_arena.study.unit import (
    deterministic_policy,
    make_eval_env,
    train_with_budget,
)
from quant_arena.study.walk_forward.agents import (
    agent_unit,
    train_fold_agent,
    training_n_envs,
)
from quant_arena.study.walk_forward.baselines import evaluate_fold_baselines
from quant_arena.study.walk_forward.config import (
    AgentSpec,
    WalkForwardConfig,
    _default_agents,
    run_name,
)
from quant_arena.study.walk_forward.fold import FoldData, FoldFeatures
from quant_arena.study.walk_forward.summary import montecarlo_runs, regime_runs

__all__ = [
    "ArenaConfig",
    "LeagueConfig",
    "LeagueTrainingEnv",
    "MatchConfig",
    "SelfPlayPool",
    "SnapshotCallback",
    "arena_config",
    "evaluate_baselines",
    "freeze",
    "league_fold",
    "league_markdown",
    "solo_scores",
    "stitched_statistics",
    "summarize",
    "train_league_agent",
]

logger = logging.getLogger(__name__)

#: Suffix of a league agent's plain counterpart (trained in TradingEnv, no self-play).
PLAIN_SUFFIX = "_plain"
#: Solo metrics kept per run (from ``BacktestResult.metrics``).
SOLO_METRICS: tuple[str, ...] = (
    "sharpe",
    "total_return",
    "max_drawdown",
    "n_trades",
    "sortino",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LeagueConfig(_Strict):
    """``arena.league``: the self-play pool every league agent trains against."""

    fixed_opponents: list[str] = Field(
        default_factory=lambda: ["flat", "long", "short", "random"],
        description=f"weak fixed opponents of the pool, from {list(OPPONENT_POLICIES)}",
    )
    n_opponents: int = Field(
        2,
        ge=1,
        description="opponents in every training episode (drawn from the pool at each episode start)",
    )
    snapshot_every: int = Field(
        10_000,
        ge=1,
        description="env steps between frozen snapshots of the learner added to the pool",
    )
    pool_size: int = Field(
        5,
        ge=1,
        description="frozen snapshots of the learner kept (the oldest leave first)",
    )
    league_opponents: bool = Field(
        True,
        description="the frozen final copies of the league agents trained before (same fold and seed) join the pool",
    )
    opponent_strength: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of opponents drawn from the frozen pool (self/league copies) when the curriculum level does not set it",
    )

    @model_validator(mode="after")
    def _known(self) -> LeagueConfig:
        bad = [p for p in self.fixed_opponents if p not in OPPONENT_POLICIES]
        if bad or not self.fixed_opponents:
            raise ValueError(
                f"league.fixed_opponents: unknown or no policies {bad}; built-in: {list(OPPONENT_POLICIES)}"
            )
        return self


class MatchConfig(_Strict):
    """``arena.matches``: the matches on the test window and the league table's uncertainty."""

    n_matches: int = Field(
        8,
        ge=1,
        description="matches per fold and seed (sub-windows of the test window at seeded offsets)",
    )
    length: int | None = Field(
        None,
        ge=2,
        description="bars per match; null = the whole test window (every match then plays the same bars)",
    )
    fixed_players: list[str] = Field(
        default_factory=lambda: ["flat", "long", "short"],
        description="fixed policies playing every match too",
    )
    n_bootstrap: int = Field(
        200,
        ge=2,
        description="bootstrap resamples of the matches behind each rating's std / CI",
    )
    alpha: float = Field(
        0.05, gt=0.0, lt=0.5, description="1 - confidence level of the rating CI"
    )
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _known(self) -> MatchConfig:
        bad = [p for p in self.fixed_players if p not in OPPONENT_POLICIES]
        if bad:
            raise ValueError(
                f"matches.fixed_players: unknown policies {bad}; built-in: {list(OPPONENT_POLICIES)}"
            )
        return self


def _default_league() -> list[AgentSpec]:
    """walk_forward's default agents that can share one arena: those without env overrides (its
    SAC trades continuous exposures, the arena's default scheme is discrete targets)."""
    return [a for a in _default_agents() if not a.env]


class ArenaConfig(WalkForwardConfig):
    """The ``arena`` parameter block (``conf/base/parameters_arena.yml``): the walk_forward
    study's fields (folds, features, env with the execution costs, training budget, agents,
    seeds, baselines) plus ``league``, ``curriculum`` and ``matches``. The solo leaderboard uses
    ``overfitting`` (CI, DSR, PBO), ``monte_carlo`` and ``regimes``; ``stress`` is refused (the
    arena injects no scenarios: walk_forward does). The defaults validate (the pipeline is built
    from them when no project is found, e.g. in Airflow's DagBag)."""

    block: ClassVar[str] = "arena"

    agents: list[AgentSpec] = Field(
        default_factory=_default_league, description="league agents (walk_forward's agent spec, no per-agent env)"
    )
    league: LeagueConfig = Field(default_factory=LeagueConfig)
    curriculum: CurriculumConfig | None = Field(
        None,
        description="self-play curriculum levels (null: one level, the env as configured)",
    )
    matches: MatchConfig = Field(default_factory=MatchConfig)
    plain_counterparts: bool = Field(
        True,
        description="also train every league agent the walk_forward way (plain TradingEnv, no self-play) as <name>_plain, in the matches and the solo leaderboard",
    )

    @model_validator(mode="after")
    def _arena(self) -> ArenaConfig:
        for spec in self.agents:
            if spec.env:
                raise ValueError(
                    f"agents[{spec.name}].env: league agents share one arena (one observation window and action scheme); "
                    "set it in arena.env, not per agent"
                )
            if spec.agent_params != "config":
                raise ValueError(
                    f"agents[{spec.name}].agent_params: the arena trains agents as configured (config), got {spec.agent_params!r}"
                )
            walk_forward_only = [f for f in ("forecast_features", "ensemble", "pretrain") if f in spec.model_fields_set]
            if walk_forward_only:
                raise ValueError(
                    f"agents[{spec.name}].{walk_forward_only[0]}: a walk_forward agent option the arena league does not support "
                    "(league agents train by self-play on the fold's own columns); remove it"
                )
        clash = sorted({a.name for a in self.agents} & set(self.matches.fixed_players))
        if clash:
            raise ValueError(
                f"agents: {clash} clash with matches.fixed_players; rename the agents"
            )
        if self.training.normalize_observations:
            raise ValueError(
                "training.normalize_observations: not supported in the arena (frozen opponents see raw observations)"
            )
        if self.env.curriculum is not None:
            raise ValueError(
                "env.curriculum: set the arena's curriculum in arena.curriculum"
            )
        if "stress" in self.model_fields_set:
            raise ValueError(
                "stress: the arena runs no stress scenarios (walk_forward does: kedro run --pipeline=walk_forward); remove it"
            )
        return self


def arena_config(params: Mapping[str, Any] | ArenaConfig) -> ArenaConfig:
    return (
        params
        if isinstance(params, ArenaConfig)
        else ArenaConfig.model_validate(dict(params))
    )


# --------------------------------------------------------------------------- self-play pool


def freeze(policy: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of an SB3 policy: a new policy of the same class and constructor arguments
    (SB3's save/load path) holding a copy of the weights (no gradient, eval mode)."""
    frozen = type(policy)(**policy._get_constructor_parameters()).to(policy.device)
    frozen.load_state_dict(policy.state_dict())
    frozen.set_training_mode(False)
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


class SelfPlayPool:
    """The opponents a learner trains against: weak fixed policies (names), frozen copies of the
    league agents trained before it and frozen snapshots of itself (at most ``pool_size``)."""

    def __init__(
        self, fixed: Sequence[str], league: Sequence[Any] = (), pool_size: int = 5
    ) -> None:
        self.fixed = list(fixed)
        self.league = list(league)
        self.pool_size = int(pool_size)
        self.snapshots: list[Any] = []
        self.n_snapshots = 0

    def add(self, policy: torch.nn.Module) -> None:
        """Add a frozen copy of ``policy`` (the oldest snapshot leaves when the pool is full)."""
        self.snapshots.append(freeze(policy))
        self.n_snapshots += 1
        del self.snapshots[: max(0, len(self.snapshots) - self.pool_size)]

    @property
    def strong(self) -> list[Any]:
        return [*self.snapshots, *self.league]

    def draw(self, rng: np.random.Generator, strength: float) -> Any:
        """One opponent: from the frozen copies with probability ``strength`` (when there are
        any), else a fixed policy."""
        strong = self.strong
        if strong and rng.random() < strength:
            return strong[int(rng.integers(len(strong)))]
        return self.fixed[int(rng.integers(len(self.fixed)))]


class SnapshotCallback(BaseCallback):
    """Adds a frozen copy of the learner's policy to the pool every ``every`` env steps."""

    def __init__(self, pool: SelfPlayPool, every: int) -> None:
        super().__init__(verbose=0)
        self.pool = pool
        self.every = int(every)
        self._next = int(every)

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self.pool.add(self.model.policy)
            self._next += self.every
        return True


class LeagueTrainingEnv(gym.Env):
    """The self-play training env: the learner in an :class:`ArenaSingleAgentEnv` against
    ``n_opponents`` opponents drawn from ``pool`` at every episode start, with a curriculum.

    The curriculum's levels set the costs, leverage, episode length and starting bars as in
    ``TradingEnv`` (the ``plan`` of a TradingEnv with the curriculum) and the opponent strength
    (the level's ``opponent_strength``, else ``strength``). :meth:`report_score` (called by the
    trainer with every validation Sharpe) moves up one level when the score clears the level's
    threshold; ``level`` is the current level.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: MarketData,
        env: TradingEnvConfig,
        pool: SelfPlayPool,
        n_opponents: int = 1,
        curriculum: CurriculumConfig | None = None,
        strength: float = 0.5,
        episode_length: int | None = None,
    ) -> None:
        super().__init__()
        self.data, self.pool, self.n_opponents, self.strength = (
            data,
            pool,
            int(n_opponents),
            float(strength),
        )
        self.cfg = env.model_copy(
            update={
                "curriculum": curriculum,
                "start": "random",
                "max_episode_steps": episode_length,
            }
        )
        self.plan = TradingEnv(
            data, self.cfg
        ).plan  # the curriculum's costs, episode lengths and start bars per level
        self.curriculum = curriculum
        self.level = curriculum.start_level if curriculum is not None else 0
        self._arenas: dict[int, ArenaSingleAgentEnv] = {}
        first = self._arena(self.level)
        self.observation_space, self.action_space = (
            first.observation_space,
            first.action_space,
        )
        self._env = first

    def _arena(self, level: int) -> ArenaSingleAgentEnv:
        if level not in self._arenas:
            ex = self.plan.exec_configs[level]
            fields = {
                k: getattr(self.cfg, k)
                for k in ArenaEnvConfig.model_fields
                if k in TradingEnvConfig.model_fields
            }
            cap = ex.max_exposure
            fields.update(
                execution=ex,
                max_episode_steps=self.plan.max_steps(level),
                start="random",
                start_index=None,
                target_exposures=tuple(
                    min(cap, max(-cap, x)) for x in self.cfg.target_exposures
                ),
                position_size=min(self.cfg.position_size, cap),
            )
            self._arenas[level] = ArenaSingleAgentEnv(
                self.data, ["flat"] * self.n_opponents, fields
            )
        return self._arenas[level]

    def level_strength(self) -> float:
        """The share of frozen opponents at the current level."""
        if self.curriculum is not None:
            s = self.curriculum.levels[self.level].opponent_strength
            if s is not None:
                return float(s)
        return self.strength

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._env = env = self._arena(self.level)
        strength = self.level_strength()
        env.set_opponents(
            [self.pool.draw(self.np_random, strength) for _ in range(self.n_opponents)]
        )
        start = self.plan.start(self.level, self.np_random)
        obs, info = env.reset(
            seed=int(self.np_random.integers(2**31 - 1)), options={"start": start}
        )
        return obs, {**info, "level": self.level}

    def step(self, action):
        return self._env.step(action)

    #: TradingEnv's rule (it reads ``cfg.curriculum`` and ``level``): up one level when ``score``
    #: clears the current level's threshold, from the next reset; True when the level changed.
    report_score = TradingEnv.report_score


# --------------------------------------------------------------------------- training


def train_league_agent(
    data: FoldData,
    features: FoldFeatures,
    frame: pd.DataFrame,
    agent: str,
    seed: int,
    config: ArenaConfig,
    league: Sequence[Any] = (),
) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """Train one league agent by self-play on the fold's training rows (see the module docstring);
    ``league``: frozen policies of league agents trained before. Returns (model with the best
    validation weights, learning curve with the curriculum level, meta)."""
    cfg = config
    torch.set_num_threads(int(cfg.training.torch_threads))
    spec = cfg.agent(agent)
    env = cfg.env
    columns = features.columns_for(None)
    unit = agent_unit(data, frame, env, columns)
    train_data, val_data = unit.data(unit.train_stop), unit.data(unit.validation[1])
    pool = SelfPlayPool(
        cfg.league.fixed_opponents,
        league if cfg.league.league_opponents else (),
        cfg.league.pool_size,
    )
    n_envs = training_n_envs(cfg, agent, spec.agent.algo)
    tc = cfg.training

    def train_env() -> DummyVecEnv:
        return DummyVecEnv(
            [
                (
                    lambda: LeagueTrainingEnv(
                        train_data,
                        env,
                        pool,
                        cfg.league.n_opponents,
                        cfg.curriculum,
                        cfg.league.opponent_strength,
                        tc.episode_length,
                    )
                )
                for _ in range(n_envs)
            ]
        )

    t0 = time.perf_counter()
    result = train_with_budget(
        spec.agent,
        train_env,
        lambda: make_eval_env(val_data, env, unit.validation[0]),
        tc,
        seed=int(seed),
        periods_per_year=data.periods_per_year,
        normalization=scaler_normalization(features.scaler, columns),
        callbacks=[SnapshotCallback(pool, cfg.league.snapshot_every)],
        progress_bar=False,
        progress_every=tc.progress_every,
        progress_label=f"arena fold {data.index} {agent} seed {int(seed)}",
    )
    curve = result.learning_curve.copy()
    for k, v in (("seed", int(seed)), ("agent", agent), ("fold", data.index)):
        curve.insert(0, k, v)
    levels = (
        curve["curriculum_level"].dropna()
        if "curriculum_level" in curve
        else pd.Series(dtype=float)
    )
    meta = {
        "fold": data.index,
        "agent": agent,
        "seed": int(seed),
        "algo": spec.agent.algo,
        "timesteps": int(result.timesteps),
        "best_timesteps": int(result.best_timesteps),
        "best_val_sharpe": float(result.best_val_sharpe),
        "stopped_early": bool(result.stopped_early),
        "snapshots": int(pool.n_snapshots),
        "league_opponents": len(pool.league),
        "level_reached": int(levels.max())
        if len(levels)
        else (cfg.curriculum.start_level if cfg.curriculum else 0),
        "seconds": time.perf_counter() - t0,
    }
    logger.info(
        "arena fold %d %s seed %d: %d steps, %d snapshots, level %d, best validation Sharpe %.3f (%.1f s)",
        data.index,
        agent,
        seed,
        meta["timesteps"],
        meta["snapshots"],
        meta["level_reached"],
        meta["best_val_sharpe"],
        meta["seconds"],
    )
    return result.model, curve, meta


def _player(model: Any) -> Any:
    """A trained model as a deterministic match player ``(obs, rng) -> action``."""
    policy = deterministic_policy(model)
    norm = observation_normalizer(model)
    act = (
        policy
        if callable(policy) and not hasattr(policy, "predict")
        else (lambda obs: policy.predict(obs, deterministic=True)[0])
    )
    if norm is None:
        return lambda obs, rng: act(obs)
    return lambda obs, rng: act(norm(obs))


def match_config(config: ArenaConfig) -> dict[str, Any]:
    """The matches' arena fields: the study's env (observation, actions) with the baselines' costs."""
    return {
        k: getattr(config.env, k)
        for k in ArenaEnvConfig.model_fields
        if k in TradingEnvConfig.model_fields
    }


#: Per-bar arrays a solo row carries for :func:`summarize` (dropped from the reports).
SOLO_ARRAYS: tuple[str, ...] = ("returns", "positions", "timestamps")


def _solo_row(result: Any, ppy: float, **keys: Any) -> dict[str, Any]:
    """The run's metrics, its bars per year and its per-bar :data:`SOLO_ARRAYS` (returns,
    positions, bar times: for the stitched statistics, Monte Carlo and regimes of
    :func:`summarize`, dropped from the reports)."""
    m = result.metrics(ppy)
    return {
        **keys,
        **{k: float(m.get(k, np.nan)) for k in SOLO_METRICS},
        "periods_per_year": float(ppy),
        "returns": np.asarray(result.returns, dtype=np.float64),
        "positions": np.asarray(result.positions, dtype=np.float64),
        # UTC bar times as naive datetime64[ns] (one unit for every run, whatever the data's)
        "timestamps": None
        if result.timestamps is None
        else pd.to_datetime(result.timestamps, utc=True).tz_convert(None).to_numpy(dtype="datetime64[ns]"),
    }


def league_fold(
    data: FoldData,
    features: FoldFeatures,
    frame: pd.DataFrame,
    seed: int,
    config: ArenaConfig,
) -> dict[str, pd.DataFrame]:
    """One fold x seed of the league: train every league agent by self-play (in config order,
    each with the frozen final copies of the ones before), play the matches on the test window,
    score every agent alone on it. Returns ``matches``, ``solo``, ``learning_curve``, ``training``."""
    cfg = config
    models: dict[str, Any] = {}
    curves, metas = [], []
    for spec in cfg.agents:
        frozen = [freeze(m.policy) for m in models.values()]
        model, curve, meta = train_league_agent(
            data, features, frame, spec.name, seed, cfg, frozen
        )
        models[spec.name] = model
        curves.append(curve)
        metas.append(meta)
    if (
        cfg.plain_counterparts
    ):  # the same agents trained the walk_forward way, for comparison
        for spec in cfg.agents:
            plain = train_fold_agent(data, features, frame, spec.name, seed, cfg)
            name = f"{spec.name}{PLAIN_SUFFIX}"
            models[name] = plain.model
            curves.append(plain.learning_curve.assign(agent=name))
            m = plain.meta
            metas.append(
                {
                    k: m.get(k)
                    for k in (
                        "fold",
                        "seed",
                        "algo",
                        "timesteps",
                        "best_timesteps",
                        "best_val_sharpe",
                        "stopped_early",
                    )
                }
                | {
                    "agent": name,
                    "snapshots": 0,
                    "league_opponents": 0,
                    "level_reached": np.nan,
                    "seconds": m.get("seconds"),
                }
            )
    t0, t1 = data.window("test")
    columns = features.columns_for(None)
    unit = agent_unit(data, frame, cfg.env, columns)
    players = {name: _player(m) for name, m in models.items()} | {
        p: p for p in cfg.matches.fixed_players
    }
    mc = cfg.matches
    matches = run_matches(
        players,
        unit.data(t1),
        (t0, t1),
        match_config(cfg),
        mc.n_matches,
        mc.length,
        seed=mc.seed + 1000 * data.index + int(seed),
    )
    matches["match"] = [f"{data.index}.{int(seed)}.{k}" for k in matches["match"]]
    matches.insert(0, "seed", int(seed))
    matches.insert(0, "fold", data.index)
    solo = solo_scores(models, data, features, frame, seed, cfg)
    return {
        "matches": matches,
        "solo": solo,
        "learning_curve": pd.concat(curves, ignore_index=True),
        "training": pd.DataFrame(metas),
    }


def solo_scores(
    models: Mapping[str, Any],
    data: FoldData,
    features: FoldFeatures,
    frame: pd.DataFrame,
    seed: int,
    config: ArenaConfig,
) -> pd.DataFrame:
    """Every model's deterministic policy ALONE in the single-asset ``TradingEnv`` on the fold's
    test window (the fold unit's ``score``: ``run_policy``, the baselines' kernel and costs)."""
    t0, t1 = data.window("test")
    unit = agent_unit(data, frame, config.env, features.columns_for(None))
    return pd.DataFrame(
        [
            _solo_row(
                unit.score(m, t0, t1, name=run_name(name, seed)),
                data.periods_per_year,
                fold=data.index,
                strategy=name,
                seed=int(seed),
                kind="plain" if name.endswith(PLAIN_SUFFIX) else "agent",
            )
            for name, m in models.items()
        ]
    )


def evaluate_baselines(
    data: FoldData,
    features: FoldFeatures,
    frame: pd.DataFrame,
    strategies: Mapping[str, Any],
    config: ArenaConfig,
) -> pd.DataFrame:
    """The baselines fitted on TRAIN and run alone on the test window (the walk_forward fold's
    :func:`~quant_arena.study.walk_forward.baselines.evaluate_fold_baselines`: same kernel, same costs)."""
    out = evaluate_fold_baselines(data, features, frame, None, strategies, config)
    rows = [
        _solo_row(
            r["test"],
            data.periods_per_year,
            fold=data.index,
            strategy=name,
            seed=-1,
            kind="baseline",
        )
        for name, r in out["results"].items()
        if "test" in r
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "fold",
            "strategy",
            "seed",
            "kind",
            *SOLO_METRICS,
            "periods_per_year",
            *SOLO_ARRAYS,
        ],
    )


# --------------------------------------------------------------------------- summary


def summarize(
    folds: Sequence[Mapping[str, pd.DataFrame]],
    baselines: Sequence[pd.DataFrame],
    config: ArenaConfig,
    closes: pd.Series | None = None,
) -> dict[str, pd.DataFrame]:
    """The league table (every fold's and seed's matches pooled), the solo leaderboard (per
    strategy: mean and spread over seeds of the fold-mean metrics), the solo runs, their Monte
    Carlo and, given the series' ``closes`` (UTC-indexed, the full history), their metrics per
    market regime (walk_forward's ``monte_carlo`` and ``regimes`` blocks, on every run's test
    windows stitched in fold order), the learning curves and the training records."""
    mc = config.matches
    matches = pd.concat([f["matches"] for f in folds], ignore_index=True)
    table = league_table(matches, mc.n_bootstrap, mc.alpha, mc.seed)
    agents = {a.name for a in config.agents}
    plain = {f"{a}{PLAIN_SUFFIX}" for a in agents}
    table.insert(
        1,
        "kind",
        [
            "agent" if p in agents else "plain" if p in plain else "fixed"
            for p in table["player"]
        ],
    )
    runs = pd.concat([*(f["solo"] for f in folds), *baselines], ignore_index=True)
    per_seed = (
        runs.groupby(["strategy", "kind", "seed"], sort=False)[list(SOLO_METRICS)]
        .mean()
        .reset_index()
    )
    g = per_seed.groupby(["strategy", "kind"], sort=False)
    board = g[list(SOLO_METRICS)].mean()
    board.columns = [f"{c}_mean" for c in board.columns]
    board.insert(1, "sharpe_std", g["sharpe"].std(ddof=1).fillna(0.0))
    board.insert(2, "sharpe_min", g["sharpe"].min())
    board.insert(3, "sharpe_max", g["sharpe"].max())
    board["n_seeds"] = g.size()
    board = board.reset_index()
    stats, overfitting = stitched_statistics(runs, config)
    board = board.merge(stats, on="strategy", how="left")
    board = board.sort_values(
        "sharpe_mean", ascending=False, kind="stable"
    ).reset_index(drop=True)
    montecarlo, regimes = solo_robustness(runs, config, closes)
    return {
        "league_table": table,
        "solo_leaderboard": board,
        "solo_overfitting": overfitting,
        "solo_runs": runs.drop(columns=list(SOLO_ARRAYS), errors="ignore"),
        "solo_montecarlo": montecarlo,
        "solo_regimes": regimes,
        "matches": matches,
        "learning_curve": pd.concat(
            [f["learning_curve"] for f in folds], ignore_index=True
        ),
        "training": pd.concat([f["training"] for f in folds], ignore_index=True),
    }


def solo_robustness(
    runs: pd.DataFrame, config: ArenaConfig, closes: pd.Series | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every solo run (strategy x seed; a baseline's one deterministic run) with its test windows
    stitched in fold order: walk_forward's Monte Carlo (block bootstrap of the returns, reshuffle
    of the trades; ``monte_carlo``) and, with ``closes``, its metrics per causal regime
    (``regimes``; empty without)."""
    missing = [c for c in ("positions", "timestamps") if c not in runs.columns]
    if missing:  # fold artifacts saved by an older version (a resumed run): bootstrap only, no regimes
        logger.warning(
            "%s: the solo runs have no %s (fold artifacts from an older version): Monte Carlo without the "
            "trade reshuffle, no regime table; rerun the fold nodes for both",
            config.block, " or ".join(missing),
        )  # fmt: skip
        runs = runs.assign(
            positions=[np.zeros(len(r)) for r in runs["returns"]] if "positions" in missing else runs["positions"],
            timestamps=[None] * len(runs) if "timestamps" in missing else runs["timestamps"],
        )
    keys, returns, positions, stamps = [], [], [], []
    for (strategy, kind, seed), group in runs.groupby(["strategy", "kind", "seed"], sort=False):
        g = group.sort_values("fold")
        keys.append((kind, strategy, int(seed)))
        returns.append(np.concatenate(list(g["returns"])))
        positions.append(np.concatenate(list(g["positions"])))
        stamps.append(None if g["timestamps"].isna().any() else np.concatenate(list(g["timestamps"])))
    mat, pos = np.column_stack(returns), np.column_stack(positions)
    montecarlo = montecarlo_runs(mat, pos, keys, config.monte_carlo)
    if closes is None or any(t is None for t in stamps):
        return montecarlo, pd.DataFrame()
    if any(not np.array_equal(t, stamps[0]) for t in stamps[1:]):
        raise DataError(f"{config.block}: the solo runs' test bars differ between strategies", rule="aligned_runs")
    index = pd.DatetimeIndex(pd.to_datetime(stamps[0], utc=True), name="timestamp")
    ppy = float(runs["periods_per_year"].iloc[0])
    return montecarlo, regime_runs(mat, index, keys, closes, config.regimes, ppy, owner=config.block)


def stitched_statistics(
    runs: pd.DataFrame, config: ArenaConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per strategy, its test windows stitched in fold order and averaged over seeds bar by bar:
    the Sharpe of that record with a block-bootstrap CI (``overfitting.bootstrap_n``/``alpha``),
    its PSR and its DSR (deflated by every strategy of the leaderboard as a trial); and the PBO
    (CSCV, ``overfitting.pbo_blocks``) of picking the best strategy on these records."""
    oc = config.overfitting
    ppy = float(runs["periods_per_year"].iloc[0])
    series: dict[str, np.ndarray] = {}
    for strategy, g in runs.groupby("strategy", sort=False):
        per_seed = [
            np.concatenate(list(s.sort_values("fold")["returns"]))
            for _, s in g.groupby("seed")
        ]
        series[strategy] = np.mean(np.vstack(per_seed), axis=0)
    sharpes = {k: float(sharpe_ratio(v, ppy)) for k, v in series.items()}
    rows = []
    for k, r in series.items():
        ci = bootstrap_sharpe_ci(r, ppy, n=oc.bootstrap_n, alpha=oc.alpha, seed=oc.seed)
        dsr = (
            deflated_sharpe_ratio(r, list(sharpes.values()), periods_per_year=ppy)
            if len(series) > 1
            else None
        )
        rows.append(
            {
                "strategy": k,
                "stitched_sharpe": sharpes[k],
                "sharpe_ci_low": float(ci.low),
                "sharpe_ci_high": float(ci.high),
                "psr": float(probabilistic_sharpe_ratio(r, 0.0, periods_per_year=ppy)),
                "dsr": float(dsr.dsr) if dsr is not None else np.nan,
                "n_bars": len(r),
            }
        )
    pbo = np.nan
    if len(series) > 1:
        pbo = float(
            probability_of_backtest_overfitting(
                pd.DataFrame(series), n_blocks=oc.pbo_blocks
            ).pbo
        )
    return pd.DataFrame(rows), pd.DataFrame(
        {"pbo": [pbo], "pbo_blocks": [oc.pbo_blocks], "n_strategies": [len(series)]}
    )


def _md(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.itertuples(index=False):
        lines.append(
            "| "
            + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row)
            + " |"
        )
    return "\n".join(lines)


def _robustness_markdown(summary: Mapping[str, pd.DataFrame], config: ArenaConfig) -> list[str]:
    """The solo runs' Monte Carlo worst case and Sharpe per regime, means over seeds."""
    out = []
    mc = summary.get("solo_montecarlo")
    if mc is not None and len(mc):
        a = config.monte_carlo.alpha
        table = (
            mc.groupby(["strategy", "kind", "method"], sort=False)[
                ["final_return_actual", "final_return_worst", "max_drawdown_worst", "prob_loss"]
            ]
            .mean()
            .reset_index()
        )
        out += [
            "## Monte Carlo (each solo run's stitched test record, mean over seeds)",
            f"`*_worst`: the {100 * a:.0f}% worst case of {config.monte_carlo.n_paths} paths "
            "(block bootstrap of the returns; reshuffle of the trades when the run traded).",
            _md(table),
        ]
    reg = summary.get("solo_regimes")
    if reg is not None and len(reg) and "sharpe" in reg.columns:
        pivot = (
            reg.groupby(["strategy", "kind", "regime"], sort=False)["sharpe"]
            .mean()
            .unstack("regime")
            .reset_index()
        )
        pivot.columns.name = None
        out += [
            "## Sharpe per market regime (causal labels, mean over seeds)",
            _md(pivot),
        ]
    return out


def league_markdown(summary: Mapping[str, pd.DataFrame], config: ArenaConfig) -> str:
    """The league table, the solo leaderboard and the curriculum levels reached, as Markdown."""
    tr = summary["training"]
    levels = (
        tr.dropna(subset=["level_reached"])
        .groupby("agent")["level_reached"]
        .agg(["mean", "max"])
        .reset_index()
        if len(tr)
        else tr
    )
    return (
        "\n\n".join(
            [
                "# Arena league",
                f"{config.n_folds} fold(s) x seeds {list(config.seeds)}; {config.matches.n_matches} match(es) per fold and seed on the TEST window "
                f"({'whole window' if config.matches.length is None else f'{config.matches.length} bars'}); ratings: Bradley-Terry on the Elo scale "
                f"(mean 0), std and {100 * (1 - config.matches.alpha):.0f}% CI over {config.matches.n_bootstrap} bootstrap resamples of the matches.",
                "## League table (matches on unseen bars)",
                _md(summary["league_table"]),
                "## Solo leaderboard (each policy alone in TradingEnv on the test window)",
                "`*_mean`, `sharpe_std/min/max`: per seed the mean over folds, then over seeds. `stitched_sharpe`, its "
                f"{100 * (1 - config.overfitting.alpha):.0f}% block-bootstrap CI, PSR and DSR (every leaderboard row a trial): the test "
                "windows stitched in fold order and averaged over seeds bar by bar.",
                _md(summary["solo_leaderboard"]),
                "PBO (CSCV over the stitched records of every strategy above): "
                + ", ".join(
                    f"{r.pbo:.3f} with {r.pbo_blocks} blocks, {r.n_strategies} strategies"
                    for r in summary["solo_overfitting"].itertuples()
                ),
                *_robustness_markdown(summary, config),
                "## Curriculum level reached (per agent, over folds and seeds)",
                _md(levels) if len(levels) else "(no curriculum)",
            ]
        )
        + "\n"
    )
