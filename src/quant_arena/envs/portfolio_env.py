"""`PortfolioEnv`: several assets on one timeline, target weights, one cash balance.

Example::

    import gymnasium as gym
    from quant_arena.envs.portfolio_env import PORTFOLIO_ENV_ID  # registers quant_arena/Portfolio-v0
    from quant_arena.sim import ExecutionConfig, MarketData

    assets = [MarketData.from_frame(table, symbol=s) for s in ("BTC-USD", "ETH-USD")]
    env = gym.make(PORTFOLIO_ENV_ID, data=assets, window=30,
                   execution=ExecutionConfig(taker_fee=0.001, max_leverage=2.0))
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Execution: :class:`~quant_arena.sim.portfolio.PortfolioAccount`, the ``sim/`` kernel's rules and
cost expressions per asset around one cash balance (same fee, spread, slippage, impact,
participation cap, funding/borrow/swap and fill delay for every asset; margin and liquidation
on the whole portfolio). Orders decided on bar ``t``'s close fill at bar ``t + fill_delay``'s open.

Actions (``action_scheme``), turned into target weights ``w`` (position value / equity; the
weight of cash is ``1 - sum(w)``, "cash as an asset") with gross exposure ``sum |w| <= L``,
``L = execution.max_exposure`` (``max_leverage`` capped by the initial margin):

- ``continuous`` + ``weights="long_short"``: ``Box(-1, 1, (A,))``; ``w = a * L / max(1, sum |a|)``.
- ``continuous`` + ``weights="long_only"``: ``Box(-1, 1, (A,))``; ``x = (a + 1) / 2`` in [0, 1],
  ``w = x * L / max(1, sum x)`` (all -1 = all cash).
- ``multi_discrete``: ``MultiDiscrete([len(size_levels)] * A)``, asset ``i`` takes weight
  ``size_levels[a_i]``; when the gross exceeds ``L`` every weight is scaled by ``L / gross``.

An asset is traded only when its target differs from its current weight by more than
``rebalance_tolerance`` (0: always rebalance, except an asset already exactly at target).

Observation (``observation="dict"``):

- ``market``: ``Box(window, sum_a F_a)`` float32: the last ``window`` bars (oldest first) of every
  asset's features side by side, asset-major (asset 0's F columns, then asset 1's ...; names in
  ``env.data.feature_names``). A 2-D window like ``TradingEnv``'s, so the same feature extractors
  work; a fresh copy of a window of the one shared feature matrix (gymnasium requires that
  observations never share memory).
- ``account``: ``2 * A + 3`` float32: per-asset weights, per-asset unrealised PnL / equity, the
  cash weight, equity / initial - 1, initial margin used / equity (``initial_margin * gross``).

``observation="dict_1d"``: the same with ``market`` flattened to ``(window * sum F,)`` (SB3's
``check_env`` advises against any 2-D Box; this is the variant for ``MultiInputPolicy``, as in
``TradingEnv``). ``observation="flat"``: one 1-D Box, market then account. Observations at bar
``t`` use bars ``<= t`` only (tested).

Reward: the weighted sum of ``TradingEnv``'s named components (``REWARD_COMPONENTS``), read for a
portfolio: ``log_return`` of the portfolio equity, ``drawdown_penalty``, ``differential_sharpe``,
``cost_penalty`` (all assets' costs / previous equity), ``idle_penalty`` (-1 when every asset is
flat), ``trade_penalty`` (-1 when any asset filled), ``profitable_close_bonus`` (+1 per position
closed above its entry), ``excess_vs_buy_and_hold`` (log return minus the log return of an
equal-weight basket over the bar). Each active component is in ``info`` as ``reward_<name>``.
Terminated on liquidation, bankruptcy or ``max_drawdown``; truncated at the end of the data or
after ``max_episode_steps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import REWARD_COMPONENTS, PortfolioEnvConfig
from quant_arena.sim import MarketData, PortfolioAccount, PortfolioData

PORTFOLIO_ENV_ID = "quant_arena/Portfolio-v0"
NAN = math.nan
LOG_FLOOR = 1e-12
DSR_CLIP = 10.0
_BIG = float(np.finfo(np.float32).max)


def _frozen_copy(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64, order="C")
    out.flags.writeable = False
    return out


def as_portfolio_data(data: PortfolioData | Sequence[MarketData] | pd.DataFrame) -> PortfolioData:
    """A :class:`PortfolioData` from itself, a list of :class:`MarketData` or a tidy multi-symbol table."""
    if isinstance(data, PortfolioData):
        return data
    if isinstance(data, pd.DataFrame):
        return PortfolioData.from_frame(data)
    if isinstance(data, MarketData):
        return PortfolioData.from_assets([data])
    if isinstance(data, Sequence):
        return PortfolioData.from_assets(list(data))
    raise TypeError(f"data must be a PortfolioData, a list of MarketData or a tidy DataFrame, got {type(data).__name__}")


class PortfolioEnv(gym.Env):
    """Multi-asset target-weight environment on the portfolio execution kernel (module docstring).

    Args:
        data: a :class:`PortfolioData`, a list of :class:`MarketData` sharing one timeline, or a
            tidy table with a ``symbol`` column.
        config: a :class:`PortfolioEnvConfig` or a mapping; keyword arguments override fields.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        data: PortfolioData | Sequence[MarketData] | pd.DataFrame,
        config: PortfolioEnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        cfg = PortfolioEnvConfig.make(config, **overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} not in {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.cfg = cfg
        self.data = data = as_portfolio_data(data)
        n = len(data)
        self.n_assets = a = data.n_assets
        self.window = w = cfg.window
        self.plan = EpisodePlan(data, cfg)
        self._earliest = self.plan.earliest
        self._last_bar = n - 1
        self._max_len = cfg.max_episode_steps or (1 << 62)
        nf = data.n_features
        self._windows = np.lib.stride_tricks.sliding_window_view(data.features, (w, nf))[:, 0]
        self.account = PortfolioAccount(data, cfg.execution, cfg.initial_equity, record=cfg.record_ledger)
        ex = cfg.execution
        self._L = ex.max_exposure
        self._im = ex.effective_initial_margin
        self._n_account = 2 * a + 3
        self._m1d = cfg.observation == "dict_1d"
        market = spaces.Box(-_BIG, _BIG, shape=(w * nf,) if self._m1d else (w, nf), dtype=np.float32)
        account = spaces.Box(-_BIG, _BIG, shape=(self._n_account,), dtype=np.float32)
        self._flat = cfg.observation == "flat"
        if self._flat:
            self.observation_space = spaces.Box(-_BIG, _BIG, shape=(w * nf + self._n_account,), dtype=np.float32)
        else:
            self.observation_space = spaces.Dict({"market": market, "account": account})
        if cfg.action_scheme == "continuous":
            self.action_space = spaces.Box(-1.0, 1.0, shape=(a,), dtype=np.float32)
            self._levels = None
        else:
            self.action_space = spaces.MultiDiscrete(np.full(a, len(cfg.size_levels), dtype=np.int64))
            self._levels = [float(x) for x in cfg.size_levels]
        self._long_only = cfg.weights == "long_only"
        self._tol = cfg.rebalance_tolerance
        self._floor = 1e-9 * cfg.initial_equity
        self._weights_r = tuple(float(cfg.reward.get(name, 0.0)) for name in REWARD_COMPONENTS)
        self._active = tuple(i for i, x in enumerate(self._weights_r) if x != 0.0)
        self._max_dd = cfg.max_drawdown if cfg.max_drawdown is not None else math.inf
        self._basket_lr = memoryview(_frozen_copy(np.log(np.maximum(np.exp(data.log_returns).mean(axis=1), LOG_FLOOR))))
        self._steps = 0
        self._peak = cfg.initial_equity
        self._dsr_a = self._dsr_b = 0.0

    # ------------------------------------------------------------------ actions
    def target_weights(self, action: Any) -> np.ndarray:
        """The target weights (length A, gross <= max exposure) an action stands for."""
        return np.array(self._targets(action))

    def _targets(self, action: Any) -> list[float]:
        a = self.n_assets
        act = action.tolist() if isinstance(action, np.ndarray) else list(action)
        if len(act) != a:
            raise ValueError(f"action must have {a} entries, got {np.shape(action)}")
        L = self._L
        if self._levels is None:
            # clip to [-1, 1] (NaN -> 0)
            act = [x if -1.0 <= x <= 1.0 else (1.0 if x > 1.0 else (-1.0 if x < -1.0 else 0.0)) for x in act]
            if self._long_only:
                act = [0.5 * (x + 1.0) for x in act]
            gross = sum(abs(x) for x in act)
            k = L / gross if gross > 1.0 else L
            return [x * k for x in act]
        levels = self._levels
        w = [levels[int(i)] for i in act]
        gross = sum(abs(x) for x in w)
        if gross > L:
            k = L / gross
            return [x * k for x in w]
        return w

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cfg = self.cfg
        start = self.plan.start(0, self.np_random)
        if options and "start" in options:
            start = int(options["start"])
            if not self._earliest <= start <= self._last_bar - 1:
                raise ValueError(f"options['start']={start} must lie in [{self._earliest}, {self._last_bar - 1}]")
        self.account.reset(start, cfg.initial_equity)
        self._steps = 0
        self._peak = cfg.initial_equity
        self._dsr_a = self._dsr_b = 0.0
        return self._observe(), {"equity": cfg.initial_equity, "t": start}

    def step(self, action):
        acc = self.account
        target = self._targets(action)
        units, mark, _ = acc.positions()
        e = acc.equity
        tol = self._tol
        if e > 0.0:
            order = [w if abs(w - ui * mi / e) > tol else NAN for w, ui, mi in zip(target, units, mark, strict=True)]
        else:
            order = target  # insolvent: the kernel drops every order
        e0 = acc.equity
        e0 = max(e0, self._floor)  # a step from a bankrupt account (equity <= 0) stays finite
        acc.step(order)
        e1 = acc.equity
        self._steps += 1
        self._peak = max(self._peak, e1)
        dd = 1.0 - e1 / self._peak
        ratio = e1 / e0
        lr = math.log(ratio if ratio > LOG_FLOOR else LOG_FLOOR)
        reward, info = self._reward_info(acc, e0, e1, lr, dd)
        terminated = False
        if acc.bankrupt:
            terminated = True
            info["termination"] = "bankruptcy"
        elif acc.liquidated:
            terminated = True
            info["termination"] = "liquidation"
        elif dd >= self._max_dd:
            terminated = True
            info["termination"] = "max_drawdown"
        truncated = not terminated and (acc.t >= self._last_bar or self._steps >= self._max_len)
        return self._observe(), reward, terminated, truncated, info

    def _reward_info(self, acc: PortfolioAccount, e0: float, e1: float, lr: float, dd: float) -> tuple[float, dict[str, Any]]:
        w = self._weights_r
        detail = self.cfg.info_detail
        comps = [0.0] * len(REWARD_COMPONENTS)
        comps[0] = lr
        comps[1] = -dd
        if w[2] != 0.0 or detail:
            r = e1 / e0 - 1.0
            a, b = self._dsr_a, self._dsr_b
            var = b - a * a
            dsr = 0.0
            if var > 1e-12:
                dsr = (b * (r - a) - 0.5 * a * (r * r - b)) / (var * math.sqrt(var))
                dsr = min(DSR_CLIP, max(-DSR_CLIP, dsr))
            self._dsr_a = a + self.cfg.dsr_eta * (r - a)
            self._dsr_b = b + self.cfg.dsr_eta * (r * r - b)
            comps[2] = dsr
        comps[3] = acc.costs / e0
        units, _, _ = acc.positions()
        filled, closed_ret, closed = acc.step_flags()
        comps[4] = 0.0 if any(units) else -1.0
        comps[5] = -1.0 if any(filled) else 0.0
        comps[6] = float(sum(1 for c, r in zip(closed, closed_ret, strict=True) if c and r > 0.0))
        comps[7] = lr - self._basket_lr[acc.t]
        reward = 0.0
        for i in self._active:
            reward += w[i] * comps[i]
        info: dict[str, Any] = {"equity": e1}
        for i in range(len(comps)) if detail else self._active:
            info["reward_" + REWARD_COMPONENTS[i]] = comps[i]
        if detail:
            info["t"] = acc.t
            info.update(acc.ledger())
            info["cash"] = acc.cash
            info["weights"] = acc.weights
            info["filled"] = acc.filled
            info["unfilled"] = acc.unfilled
            info["dropped"] = acc.dropped
            info["liquidated"] = acc.liquidated
            info["bankrupt"] = acc.bankrupt
            info["drawdown"] = dd
        return reward, info

    def _account_vector(self) -> np.ndarray:
        acc = self.account
        units, mark, entry = acc.positions()
        e = acc.equity
        es = e if e > self._floor else self._floor
        values = [ui * mi for ui, mi in zip(units, mark, strict=True)]
        row = [v / es for v in values]
        row += [ui * (mi - ei) / es for ui, mi, ei in zip(units, mark, entry, strict=True)]
        row += [acc.cash / es, e / self.cfg.initial_equity - 1.0, sum(abs(v) for v in values) * self._im / es]
        out = np.array(row, dtype=np.float64)
        np.clip(out, -_BIG, _BIG, out=out)  # finite float32 even on absurd paths
        return out.astype(np.float32)

    def _observe(self):
        t = self.account.t
        market = self._windows[t - self.window + 1]  # a view of the shared matrix...
        acc = self._account_vector()
        if self._flat:
            return np.concatenate([market.reshape(-1), acc])
        if self._m1d:
            return {"market": market.copy().reshape(-1), "account": acc}
        return {"market": market.copy(), "account": acc}  # ...copied: each observation owns its data

    def render(self):
        if self.render_mode == "ansi":
            a = self.account
            w = ", ".join(f"{lab}={x:+.3f}" for lab, x in zip(self.data.labels, a.weights, strict=True))
            return f"t={a.t} equity={a.equity:.6g} cash={a.cash:.6g} weights: {w}"
        return None


if PORTFOLIO_ENV_ID not in gym.registry:
    gym.register(id=PORTFOLIO_ENV_ID, entry_point="quant_arena.envs.portfolio_env:PortfolioEnv")
