"""The multi-asset portfolio study behind ``kedro run --pipeline=portfolio``.

Several assets on one timeline are walked forward fold by fold (:mod:`quant_arena.evaluation.folds`,
the single-asset study's folds, purge and embargo) and every strategy trades them from one cash
balance on the one portfolio kernel (:class:`~quant_arena.sim.portfolio.PortfolioAccount`) with
the same ``env.execution`` costs:

* the multi-asset RL agents (:class:`~quant_arena.envs.portfolio_env.PortfolioEnv`, target weights),
  trained on the fold's TRAINING rows with validation early stopping, one run per seed;
* the portfolio baselines of :mod:`quant_arena.agents.baselines` (``scope = "portfolio"``):
  ``equal_risk_contribution`` (covariance and ERC solver fitted on the training window only),
  ``equal_weight``, ``inverse_volatility`` (training-window volatilities) and
  ``buy_and_hold_basket`` (equal weights bought at the test start, never rebalanced).

The functions, in the order the pipeline calls them::

    portfolio_market(config)                  the bars: the regime-switching generator's correlated
                                              assets (default) or a multi-symbol file
    portfolio_features(bars, config)          causal features per asset, every asset on one timeline
    prepare_fold(features, i, config)         the fold's windows; per-asset scalers and the baselines
                                              fitted on the TRAINING rows only (what they saw is kept)
    evaluate_fold_baselines(...)              baselines on the validation and test windows
    evaluate_fold_agent(...)                  one agent x seed: train, then its deterministic policy
                                              on the test window
    stitch_and_summarise(...)                 the walk-forward study's stitch (continuous out-of-sample
                                              records) and summary (metrics, bootstrap Sharpe CI,
                                              PSR/DSR, PBO, Monte Carlo) over the folds

Kedro-free; parameters arrive validated as :class:`PortfolioStudyConfig`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from quant_arena.agents.baselines import make_baselines
from quant_arena.agents.factory import AgentConfig
from quant_arena.agents.training import observation_normalizer
from quant_arena.envs.config import PortfolioEnvConfig
from quant_arena.envs.portfolio_env import PortfolioEnv
from quant_arena.evaluation.folds import FoldConfig
from quant_arena.evaluation.metrics import sharpe_ratio
from quant_arena.evaluation.portfolio import run_portfolio_policy, run_portfolio_targets
from quant_arena.features import FeatureConfig, build_features
from quant_arena.features.scalers import make_scaler
from quant_arena.market.calendars import infer_periods_per_year
from quant_arena.market.cleaning import clean_ohlcv
from quant_arena.market.errors import DataError
from quant_arena.market.sources import load_file
from quant_arena.sim import PortfolioData
from quant_arena.study.data import market_data
from quant_arena.study.unit import (
    deterministic_policy,
    eval_overrides,
    train_overrides,
    train_with_budget,
)
from quant_arena.study.walk_forward import (
    MonteCarloConfig,
    OverfittingConfig,
    WFTrainingConfig,
    run_name,
    select_folds,
    stitch_oos,
    summarise,
)
from quant_arena.synthetic.generator import generate_market

__all__ = [
    "PortfolioAgentSpec",
    "PortfolioDataConfig",
    "PortfolioStudyConfig",
    "SyntheticAsset",
    "evaluate_fold_agent",
    "evaluate_fold_baselines",
    "fold_portfolio_data",
    "oos_periods_per_year",
    "portfolio_features",
    "portfolio_market",
    "prepare_fold",
    "stitch_and_summarise",
]

logger = logging.getLogger(__name__)

_KEYS = ("symbol", "timeframe", "timestamp")
_OHLCV = ("open", "high", "low", "close", "volume")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- parameters


class SyntheticAsset(_Strict):
    """One generated asset: log return ``beta * market + volatility_scale * own`` per bar."""

    symbol: str
    beta: float = Field(1.0, description="loading on the common market path")
    volatility_scale: float = Field(
        1.0, ge=0.0, description="scale of the asset's own (independent) path"
    )


class PortfolioDataConfig(_Strict):
    """Where the bars come from (``portfolio.data``)."""

    source: Literal["synthetic", "file"] = "synthetic"
    # synthetic: the project's regime-switching generator, one common path + one own path per asset
    n_bars: int = Field(2000, ge=50)
    timeframe: str = "1d"
    start: str = "2015-01-01"
    seed: int = Field(0, ge=0)
    assets: list[SyntheticAsset] = Field(
        default_factory=lambda: [
            SyntheticAsset(symbol="AAA", beta=1.0, volatility_scale=0.5),
            SyntheticAsset(symbol="BBB", beta=0.6, volatility_scale=1.0),
            SyntheticAsset(symbol="CCC", beta=0.3, volatility_scale=0.4),
        ],
        min_length=2,
    )
    synthetic: dict[str, Any] = Field(
        default_factory=dict,
        description="fields of quant_arena.synthetic.SyntheticConfig",
    )
    # file: any format quant_arena.market.sources.load_file reads (long, wide, ...)
    path: str | None = None
    format: str = "auto"
    clean: dict[str, Any] | None = Field(
        default_factory=dict,
        description="file: quant_arena.market.CleanConfig for the file's bars ({} = the defaults; null = no cleaning)",
    )
    symbols: list[str] | None = Field(
        None, description="the assets to use (default: every symbol of the file)"
    )

    @model_validator(mode="after")
    def _check(self) -> PortfolioDataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("portfolio.data.path is required with source: file")
        if self.symbols is not None and len(self.symbols) < 2:
            raise ValueError(
                f"portfolio.data.symbols needs at least 2 assets, got {self.symbols}"
            )
        return self


class PortfolioAgentSpec(_Strict):
    """One multi-asset RL agent: a name, its model and overrides of ``portfolio.env``."""

    name: str
    agent: AgentConfig = Field(default_factory=AgentConfig)
    env: dict[str, Any] = Field(
        default_factory=dict,
        description="PortfolioEnvConfig overrides for this agent (not execution)",
    )
    n_envs: int = Field(1, ge=1, description="env copies of the training vector env")

    @field_validator("env")
    @classmethod
    def _no_costs(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "execution" in value:
            raise ValueError(
                "an agent may not override env.execution: every strategy trades with the same costs"
            )
        return value


class PortfolioStudyConfig(_Strict):
    """The ``portfolio`` parameter block (``conf/base/parameters_portfolio.yml``)."""

    #: The block's name in conf, for the messages of the fold helpers shared with walk_forward.
    block: ClassVar[str] = "portfolio"

    data: PortfolioDataConfig = Field(default_factory=PortfolioDataConfig)
    features: FeatureConfig = Field(
        default_factory=lambda: FeatureConfig(
            returns=[],
            log_returns=[1, 5, 20],
            sma=[],
            ema=[],
            rsi=[14],
            macd=[],
            bbands=[],
            atr=[],
            stoch=[],
            adx=[],
            obv=[],
            volume_roc=[],
            vwap=[],
            volatility=[20],
            candles=[],
            pivots=[],
            time=False,
            higher_timeframes={"timeframes": []},
        )
    )
    scaler: Literal["zscore", "minmax", "robust"] = "robust"
    folds: FoldConfig = Field(
        default_factory=lambda: FoldConfig(
            train=500, validation=100, test=100, observation_window=30, label_horizon=1
        )
    )
    n_folds: int = Field(
        3,
        ge=1,
        description="read at BUILD time; the data must give at least this many folds",
    )
    use: Literal["last", "first"] = "last"
    env: PortfolioEnvConfig = Field(default_factory=PortfolioEnvConfig)
    training: WFTrainingConfig = Field(default_factory=WFTrainingConfig)
    agents: list[PortfolioAgentSpec] = Field(
        default_factory=lambda: [
            PortfolioAgentSpec(name="ppo_portfolio", agent=AgentConfig(algo="ppo"))
        ]
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    baselines: dict[str, dict[str, Any] | None] = Field(
        default_factory=lambda: {
            "equal_risk_contribution": {},
            "equal_weight": {},
            "inverse_volatility": {},
            "buy_and_hold_basket": {},
        }
    )
    benchmark: str = Field(
        "buy_and_hold_basket", description="the leaderboard's benchmark strategy"
    )
    monte_carlo: MonteCarloConfig = Field(default_factory=MonteCarloConfig)
    overfitting: OverfittingConfig = Field(default_factory=OverfittingConfig)

    @model_validator(mode="after")
    def _check(self) -> PortfolioStudyConfig:
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError(f"portfolio.agents: names repeat: {names}")
        built = make_baselines(self.baselines)
        single = [k for k, b in built.items() if b.scope != "portfolio"]
        if single:
            raise ValueError(
                f"portfolio.baselines: {single} are single-asset baselines; use portfolio ones (scope 'portfolio')"
            )
        if self.benchmark not in built:
            raise ValueError(
                f"portfolio.benchmark {self.benchmark!r} is not among portfolio.baselines {sorted(built)}"
            )
        for a in self.agents:
            window = self.agent_env(a.name).window
            if window > self.folds.observation_window:
                raise ValueError(
                    f"portfolio.agents[{a.name}]: env.window {window} > folds.observation_window {self.folds.observation_window}"
                )
        return self

    def agent(self, name: str) -> PortfolioAgentSpec:
        for a in self.agents:
            if a.name == name:
                return a
        raise ValueError(
            f"portfolio.agents has no agent {name!r} (agents: {[a.name for a in self.agents]})"
        )

    def agent_env(self, name: str) -> PortfolioEnvConfig:
        """``env`` with the agent's overrides."""
        return PortfolioEnvConfig.make(self.env, **self.agent(name).env)


# --------------------------------------------------------------------------- data


def _mix(
    common: pd.DataFrame, own: pd.DataFrame, asset: SyntheticAsset, start_price: float
) -> pd.DataFrame:
    """An asset whose log return is ``beta * common + scale * own``; its bar range is the own path's
    relative high/low range scaled the same way (so high >= max(open, close) >= min >= low > 0)."""
    rc = np.diff(
        np.log(common["close"].to_numpy()),
        prepend=math.log(float(common["open"].iloc[0])),
    )
    ro = np.diff(
        np.log(own["close"].to_numpy()), prepend=math.log(float(own["open"].iloc[0]))
    )
    r = asset.beta * rc + asset.volatility_scale * ro
    close = start_price * np.exp(np.cumsum(r))
    open_ = np.concatenate([[start_price], close[:-1]])
    o, c = own["open"].to_numpy(), own["close"].to_numpy()
    up = np.log(own["high"].to_numpy() / np.maximum(o, c)) * max(
        asset.volatility_scale, 0.1
    )
    down = np.log(np.minimum(o, c) / own["low"].to_numpy()) * max(
        asset.volatility_scale, 0.1
    )
    return pd.DataFrame(
        {
            "symbol": asset.symbol,
            "timeframe": own["timeframe"].to_numpy(),
            "timestamp": own["timestamp"].to_numpy(),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(up),
            "low": np.minimum(open_, close) * np.exp(-down),
            "close": close,
            "volume": own["volume"].to_numpy(),
        }
    )


def portfolio_market(config: PortfolioStudyConfig) -> pd.DataFrame:
    """The study's bars in the tidy layout, every asset on the same timestamps.

    ``source: synthetic``: :func:`quant_arena.synthetic.generator.generate_market` draws one common
    path (seed ``data.seed``) and one own path per asset (seeds ``data.seed + 1 + i``); asset ``i``'s
    log return is ``beta_i * common + volatility_scale_i * own_i``: correlated assets with regimes.
    ``source: file``: :func:`quant_arena.market.sources.load_file`; only the timestamps every asset
    has are kept (the count of rows dropped is logged and in ``attrs["n_rows_dropped"]``).
    """
    d = config.data
    if d.source == "synthetic":
        kw = {
            "n_bars": d.n_bars,
            "timeframe": d.timeframe,
            "start": d.start,
            **d.synthetic,
        }
        common = generate_market(symbol="MARKET", seed=d.seed, **kw)
        parts = [
            _mix(
                common,
                generate_market(symbol=a.symbol, seed=d.seed + 1 + i, **kw),
                a,
                100.0,
            )
            for i, a in enumerate(d.assets)
        ]
        bars = pd.concat(parts, ignore_index=True)
        bars.attrs["n_rows_dropped"] = 0
        return bars
    raw = load_file(d.path, d.format)
    syms = list(pd.unique(raw["symbol"])) if d.symbols is None else list(d.symbols)
    missing = [s for s in syms if s not in set(raw["symbol"])]
    if missing:
        raise DataError(
            f"portfolio.data.symbols {missing} are not in the file (symbols: {sorted(set(raw['symbol']))})",
            file=d.path,
            rule="symbols",
        )
    if len(syms) < 2:
        raise DataError(
            f"a portfolio needs at least 2 assets, the file gives {syms}",
            file=d.path,
            rule="n_assets",
        )
    raw = raw[raw["symbol"].isin(syms)]
    if d.clean is not None:
        cleaned = clean_ohlcv(raw, d.clean)
        logger.info(
            "portfolio: cleaning %s quarantined %d rows",
            d.path,
            len(cleaned.quarantine),
        )
        raw = cleaned.clean
    ok = raw.dropna(subset=list(_OHLCV))
    common = set.intersection(*(set(g["timestamp"]) for _, g in ok.groupby("symbol")))
    bars = ok[ok["timestamp"].isin(common)]
    bars = (
        bars[[*_KEYS, *_OHLCV]]
        .sort_values(["symbol", "timestamp"])
        .reset_index(drop=True)
    )
    dropped = len(raw) - len(bars)
    logger.info(
        "portfolio: %d assets %s on %d common bars (%d rows outside the common timeline dropped)",
        len(syms),
        syms,
        len(common),
        dropped,
    )
    bars.attrs["n_rows_dropped"] = int(dropped)
    return bars


def portfolio_features(
    bars: pd.DataFrame, config: PortfolioStudyConfig
) -> pd.DataFrame:
    """Causal features per asset (:func:`quant_arena.features.build_features` with ``features``);
    checks that every asset has the same timestamps."""
    out = build_features(bars, config.features)
    stamps = [g["timestamp"].to_numpy() for _, g in out.groupby("symbol", sort=False)]
    if any(len(s) != len(stamps[0]) or (s != stamps[0]).any() for s in stamps[1:]):
        raise DataError(
            "portfolio: the assets do not share one timeline", rule="aligned_timeline"
        )
    return out.reset_index(drop=True)


def _feature_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c.startswith("f_")]


def _by_symbol(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        str(s): g.reset_index(drop=True)
        for s, g in features.groupby("symbol", sort=True)
    }


# --------------------------------------------------------------------------- one fold


def prepare_fold(
    features: pd.DataFrame, fold_index: int, config: PortfolioStudyConfig
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fold ``fold_index``: its windows, per-asset scalers and the baselines fitted on its
    TRAINING rows only, and its model input (every asset's rows up to the test end, features scaled).

    Returns:
        the fold artifact (``index``, ``source_index``, ``fold``, ``periods_per_year``,
        ``symbols``, ``columns``, ``baselines`` (fitted), ``fit`` (per fitted object: the last
        timestamp and rows it saw, the weights)) and the model input table.
    """
    cfg = config
    if not 0 <= fold_index < cfg.n_folds:
        raise ValueError(
            f"fold {fold_index} does not exist: portfolio.n_folds = {cfg.n_folds}"
        )
    per = _by_symbol(features)
    symbols = list(per)
    stamps = per[symbols[0]]["timestamp"]
    try:
        used, _ = select_folds(stamps, cfg)
    except ValueError as exc:  # the walk-forward helper names its own block
        raise ValueError(str(exc).replace("walk_forward", "portfolio")) from None
    fold = used[fold_index]
    lo, hi = fold.train.start, fold.train.stop
    columns = _feature_columns(features)
    parts, fit = [], []
    for sym, g in per.items():
        visible = g.iloc[:hi]  # nothing after the training window exists for the scaler
        scaler = make_scaler(cfg.scaler).fit(visible.iloc[lo:], columns)
        parts.append(scaler.transform(g.iloc[: fold.test.stop]))
        fit.append(
            {
                "object": f"scaler:{sym}",
                "rows_seen": hi - lo,
                "last_timestamp_seen": pd.Timestamp(visible["timestamp"].iloc[-1]),
            }
        )
    frame = pd.concat(parts, ignore_index=True)
    train = pd.concat([g.iloc[lo:hi] for g in per.values()], ignore_index=True)
    baselines = make_baselines(cfg.baselines, scope="portfolio")
    for name, b in baselines.items():
        b.fit(train[[*_KEYS, *_OHLCV]], columns)
        fit.append(
            {
                "object": f"baseline:{name}",
                "rows_seen": hi - lo,
                "last_timestamp_seen": pd.Timestamp(train["timestamp"].max()),
                **{f"weight:{a}": w for a, w in b.weight_map().items()},
            }
        )
    ppy = infer_periods_per_year(pd.DatetimeIndex(pd.to_datetime(stamps, utc=True)))[0]
    for row in fit:
        row.update(fold=fold_index, train_end=pd.Timestamp(fold.train_end))
    logger.info(
        "portfolio fold %d: train %s..%s, test %s..%s; %s",
        fold_index,
        fold.train.first,
        fold.train.last,
        fold.test.first,
        fold.test.last,
        {k: np.round(b.weights, 3).tolist() for k, b in baselines.items()},
    )
    artifact = {
        "index": fold_index,
        "source_index": fold.index,
        "fold": fold,
        "periods_per_year": float(ppy),
        "symbols": symbols,
        "columns": columns,
        "baselines": baselines,
        "fit": fit,
    }
    return artifact, frame


def fold_portfolio_data(
    artifact: Mapping[str, Any], frame: pd.DataFrame, end: int
) -> PortfolioData:
    """The fold's assets, rows ``[0, end)`` of its model input, as one :class:`PortfolioData`."""
    per = _by_symbol(frame)
    return PortfolioData.from_assets(
        [
            market_data(
                per[s],
                artifact["columns"],
                end=end,
                periods_per_year=artifact["periods_per_year"],
            )
            for s in artifact["symbols"]
        ]
    )


def _window(artifact: Mapping[str, Any], name: str) -> tuple[int, int]:
    w = getattr(artifact["fold"], name)
    return int(w.start), int(w.stop)


def evaluate_fold_baselines(
    artifact: Mapping[str, Any], frame: pd.DataFrame, config: PortfolioStudyConfig
) -> dict[str, Any]:
    """Every fitted baseline on the fold's validation and test windows (:func:`run_portfolio_targets`,
    ``env.execution`` and ``env.rebalance_tolerance``: the agents' costs and rule).

    Returns:
        ``{"kind": "baseline", "results": {name: {"validation"|"test": BacktestResult}}, "lookahead": {}, "fit": {...}}``.
    """
    env = config.env
    results: dict[str, dict[str, Any]] = {name: {} for name in artifact["baselines"]}
    for window in ("validation", "test"):
        start, end = _window(artifact, window)
        if end - start < 2:
            continue
        data = fold_portfolio_data(artifact, frame, end)
        decide = frame[frame["symbol"] == artifact["symbols"][0]].iloc[start : end - 1]
        for name, b in artifact["baselines"].items():
            order = [b.assets.index(s) for s in artifact["symbols"]]
            targets = b.targets(frame[frame["timestamp"].isin(decide["timestamp"])])[
                :, order
            ]
            results[name][window] = run_portfolio_targets(
                data,
                targets,
                start,
                end,
                execution=env.execution,
                initial_equity=env.initial_equity,
                rebalance_tolerance=env.rebalance_tolerance,
                name=name,
            )
    fit = {
        r["object"].split(":", 1)[1]: {
            "rows_given": r["rows_seen"],
            "last_timestamp_given": r["last_timestamp_seen"],
        }
        for r in artifact["fit"]
        if r["object"].startswith("baseline:")
    }
    return {"kind": "baseline", "results": results, "lookahead": {}, "fit": fit}


def _train_env(
    data: PortfolioData,
    env: PortfolioEnvConfig,
    n_envs: int,
    episode_length: int | None,
) -> DummyVecEnv:
    over = train_overrides(episode_length)
    return DummyVecEnv(
        [lambda: Monitor(PortfolioEnv(data, env, **over)) for _ in range(int(n_envs))]
    )


def _eval_env(data: PortfolioData, env: PortfolioEnvConfig, start: int) -> PortfolioEnv:
    return PortfolioEnv(data, env, **eval_overrides(start))


def evaluate_fold_agent(
    artifact: Mapping[str, Any],
    frame: pd.DataFrame,
    agent: str,
    seed: int,
    config: PortfolioStudyConfig,
) -> dict[str, Any]:
    """Train ``agent`` with ``seed`` on the fold's TRAINING rows (the validation window only for
    early stopping and the best weights), then run its deterministic policy on the test window.

    Returns:
        ``{"kind": "agent", "strategy", "seed", "results": {"test": BacktestResult},
        "validation": {"best_val_sharpe"}, "meta": {...}, "learning_curve": DataFrame}``.
    """
    cfg = config
    torch.set_num_threads(int(cfg.training.torch_threads))
    spec, env, tc = cfg.agent(agent), cfg.agent_env(agent), cfg.training
    t0 = time.perf_counter()
    train_stop = _window(artifact, "train")[1]
    v0, v1 = _window(artifact, "validation")
    train_data = fold_portfolio_data(artifact, frame, train_stop)
    val_data = fold_portfolio_data(artifact, frame, v1)
    n_envs = tc.n_envs or spec.n_envs
    result = train_with_budget(
        spec.agent,
        lambda: _train_env(train_data, env, n_envs, tc.episode_length),
        lambda: _eval_env(val_data, env, v0),
        tc,
        seed=seed,
        periods_per_year=artifact["periods_per_year"],
        progress_every=tc.progress_every,
        progress_label=f"portfolio fold {artifact['index']} {agent} seed {seed}",
        curriculum=False,
    )
    start, end = _window(artifact, "test")
    test_env = _eval_env(fold_portfolio_data(artifact, frame, end), env, start)
    name = run_name(agent, seed)
    try:
        test = run_portfolio_policy(
            test_env,
            deterministic_policy(result.model),
            start,
            end,
            obs_normalizer=observation_normalizer(result.model),
            name=name,
        )
    finally:
        test_env.close()
    stamps = frame.loc[
        frame["symbol"] == artifact["symbols"][0], "timestamp"
    ].reset_index(drop=True)
    meta = {
        "agent": agent,
        "seed": int(seed),
        "train_rows": int(train_stop),
        "train_last_timestamp": pd.Timestamp(stamps.iloc[train_stop - 1]),
        "validation_rows": int(v1),
        "seconds": time.perf_counter() - t0,
    }
    curve = (
        result.learning_curve.assign(
            fold=artifact["index"], agent=agent, seed=int(seed)
        )
        if len(result.learning_curve)
        else result.learning_curve
    )
    logger.info(
        "portfolio fold %d %s: best validation Sharpe %.3f, test Sharpe %.3f (%.1f s)",
        artifact["index"],
        name,
        result.best_val_sharpe,
        sharpe_ratio(test.returns, artifact["periods_per_year"]),
        meta["seconds"],
    )
    return {
        "kind": "agent",
        "strategy": agent,
        "seed": int(seed),
        "results": {"test": test},
        "validation": {"best_val_sharpe": float(result.best_val_sharpe)},
        "meta": meta,
        "learning_curve": curve,
    }


# --------------------------------------------------------------------------- fan-in


def stitch_and_summarise(
    folds: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
    config: PortfolioStudyConfig,
) -> dict[str, pd.DataFrame]:
    """The walk-forward study's stitch and summary over the folds.

    Args:
        folds: per fold, in order: its artifact and its evaluations (baselines first, then agents).

    Returns:
        ``oos_returns``, ``fold_metrics``, ``validation``, ``summary`` (leaderboard: mean and std
        over seeds, bootstrap Sharpe CI, PSR/DSR), ``runs``, ``overfitting`` (PBO by CSCV, DSR
        trials), ``montecarlo``, ``fitted`` (what every fitted object saw, ``honest``: nothing after
        its fold's training end) and ``weights`` (the fitted baselines' weights per fold).

    Raises:
        RuntimeError: a fitted object saw bars after its fold's training end.
    """
    infos = [
        {"index": a["index"], "periods_per_year": a["periods_per_year"]}
        for a, _ in folds
    ]
    out = stitch_oos(infos, [list(evs) for _, evs in folds], config)
    fitted = pd.DataFrame(
        [
            r
            for a, evs in folds
            for r in [
                *a["fit"],
                *[
                    {
                        "fold": a["index"],
                        "object": f"agent:{run_name(e['strategy'], e['seed'])}",
                        "train_end": pd.Timestamp(a["fold"].train_end),
                        "rows_seen": e["meta"]["train_rows"],
                        "last_timestamp_seen": e["meta"]["train_last_timestamp"],
                    }
                    for e in evs
                    if e["kind"] == "agent"
                ],
            ]
        ]
    )
    fitted["honest"] = pd.to_datetime(
        fitted["last_timestamp_seen"], utc=True
    ) <= pd.to_datetime(fitted["train_end"], utc=True)
    if not fitted["honest"].all():
        raise RuntimeError(
            f"fitted objects saw bars after their fold's training end: {fitted.loc[~fitted['honest'], ['fold', 'object']].to_dict('records')}"
        )
    weights = fitted[fitted["object"].str.startswith("baseline:")]
    weights = weights[
        ["fold", "object", *[c for c in weights.columns if c.startswith("weight:")]]
    ].reset_index(drop=True)
    summary = summarise(out, None, infos[0]["periods_per_year"], config)
    curves = [
        e["learning_curve"]
        for _, evs in folds
        for e in evs
        if e["kind"] == "agent" and len(e["learning_curve"])
    ]
    return {
        **out,
        **{k: summary[k] for k in ("summary", "runs", "overfitting", "montecarlo")},
        "fitted": fitted.drop(
            columns=[c for c in fitted.columns if c.startswith("weight:")]
        ),
        "weights": weights,
        "learning_curve": pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(),
    }


def oos_periods_per_year(oos: pd.DataFrame) -> float:
    """Bars per year of a stitched out-of-sample table (read off its timestamps)."""
    stamps = pd.DatetimeIndex(
        pd.to_datetime(pd.unique(oos["timestamp"]), utc=True)
    ).sort_values()
    return float(infer_periods_per_year(stamps)[0])
