"""`TradingVecEnv`: N TradingEnv copies stepped in one call over numpy arrays (an SB3 VecEnv).

Every copy shares the one :class:`MarketData` (no per-env copy of prices or features) and the
accounts are a :class:`~quant_arena.sim.batch.BatchAccounts`. The trajectories are exactly those
of N separate :class:`TradingEnv` s wrapped in SB3's ``DummyVecEnv`` with the same seeds
(``vec.seed(s)`` seeds env ``i`` with ``s + i``): same observations, rewards, dones and info
numbers (tested with ``np.testing.assert_array_equal``). Auto-reset follows SB3: a finished env's
last observation is in ``info["terminal_observation"]``, ``info["TimeLimit.truncated"]`` tells a
truncation, and the returned observation is the first one of the next episode.

``info="full"`` (default) gives each env the same info dict as ``TradingEnv``;
``info="lean"`` gives empty dicts (plus the SB3 keys when an env finishes) and leaves the
numbers in arrays (:attr:`last_equity`, :attr:`last_components`, ...): much faster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import REWARD_COMPONENTS, TradingEnvConfig
from quant_arena.envs.trading_env import (
    DSR_CLIP,
    LOG_FLOOR,
    TradingEnv,
    as_market_data,
    make_config,
)
from quant_arena.sim.batch import BatchAccounts
from quant_arena.sim.market_data import MarketData

_LEDGER_ARRAYS = (
    ("pnl", "pnl"), ("fee", "fee_paid"), ("spread", "spread"), ("impact", "impact_cost"),
    ("funding", "funding"), ("swap", "swap"), ("liquidation_fee", "liquidation_fee"),
)


class TradingVecEnv(VecEnv):
    """Batched :class:`TradingEnv` (see the module docstring).

    Args:
        data: shared :class:`MarketData` (or a tidy feature table, converted once).
        num_envs: number of environment copies.
        config: a :class:`TradingEnvConfig` or mapping; keyword arguments override fields.
        info: ``"full"`` or ``"lean"`` info dicts.
    """

    def __init__(
        self,
        data: MarketData | pd.DataFrame,
        num_envs: int,
        config: TradingEnvConfig | Mapping[str, Any] | None = None,
        info: Literal["full", "lean"] = "full",
        **overrides: Any,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be at least 1")
        if info not in ("full", "lean"):
            raise ValueError(f"info={info!r} must be 'full' or 'lean'")
        cfg = make_config(config, **overrides)
        self.cfg = cfg
        self.data = data = as_market_data(data)
        self.render_mode = None
        proto = TradingEnv(data, cfg)  # spaces and action tables, identical to a single env
        super().__init__(num_envs, proto.observation_space, proto.action_space)
        n = num_envs
        self.plan: EpisodePlan = proto.plan
        self._full = info == "full"
        self._detail = cfg.info_detail
        self._scheme = proto._scheme
        self._table = np.array(proto._targets, dtype=np.float64) if proto._targets else None
        self._n_targets = len(proto._targets)
        self._weights = proto._weights
        self._active = proto._active
        self._only_lr = proto._only_lr
        self._max_dd = proto._max_dd
        self._inv_ts = proto._inv_ts
        self._eta = proto._eta
        self._tol = proto._tol
        self._flat = proto._flat
        self._m1d = proto._m1d
        self.window = w = cfg.window
        feats = data.features
        self._windows = np.lib.stride_tricks.sliding_window_view(feats, (w, feats.shape[1]))[:, 0]
        self._last_bar = len(data) - 1
        cur = cfg.curriculum
        start_level = cur.start_level if cur is not None else 0
        self.level = np.full(n, start_level, dtype=np.int64)
        self.acc = BatchAccounts(data, n, self.plan.exec_configs[start_level], cfg.initial_equity)
        self._max_exp = np.zeros(n)
        self._im = np.zeros(n)
        self._max_len = np.zeros(n, dtype=np.int64)
        for i in range(n):
            self._apply_level(i)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._steps = np.zeros(n, dtype=np.int64)
        self._start_equity = np.full(n, cfg.initial_equity)
        self._peak = np.full(n, cfg.initial_equity)
        self._last_target = np.zeros(n)
        self._dsr_a = np.zeros(n)
        self._dsr_b = np.zeros(n)
        self._actions: np.ndarray | None = None
        self.last_equity = self.acc.equity
        self.last_components: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ curriculum
    def _apply_level(self, i: int) -> None:
        level = int(self.level[i])
        ex = self.plan.exec_configs[level]
        self.acc.configure(i, ex)
        self._max_exp[i] = ex.max_exposure
        self._im[i] = ex.effective_initial_margin
        self._max_len[i] = self.plan.max_steps(level) or (1 << 62)

    def report_score(self, score: float, indices: VecEnvIndices = None) -> list[bool]:
        """``TradingEnv.report_score`` for the chosen envs (applies at each env's next reset)."""
        cur = self.cfg.curriculum
        out = []
        for i in self._get_indices(indices):
            moved = False
            if cur is not None and self.level[i] < len(cur.levels) - 1 and score >= cur.thresholds[self.level[i]]:
                self.level[i] += 1
                moved = True
            out.append(moved)
        return out

    # ------------------------------------------------------------------ reset
    def _reset_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> None:
        if seed is not None or self._rngs[i] is None:
            self._rngs[i] = seeding.np_random(seed)[0]
        if options and "level" in options:
            self.level[i] = int(options["level"])
        self._apply_level(i)
        start = self.plan.start(int(self.level[i]), self._rngs[i])
        if options and "start" in options:
            start = int(options["start"])
        eq = self.cfg.initial_equity
        self.acc.reset(i, start, eq)
        self._steps[i] = 0
        self._start_equity[i] = eq
        self._peak[i] = eq
        self._last_target[i] = 0.0
        self._dsr_a[i] = 0.0
        self._dsr_b[i] = 0.0

    def reset(self):
        for i in range(self.num_envs):
            self._reset_one(i, self._seeds[i], self._options[i])
        self.reset_infos = [
            {"equity": self.cfg.initial_equity, "level": int(self.level[i]), "t": int(self.acc.t[i])}
            for i in range(self.num_envs)
        ]
        self._reset_seeds()
        self._reset_options()
        return self._observe(None)

    # ------------------------------------------------------------------ step
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._step_wait()

    def _step_wait(self):  # noqa: PLR0915 - mirrors TradingEnv.step line by line
        where = np.where
        acc = self.acc
        n = self.num_envs
        acts = np.asarray(self._actions)
        mx = self._max_exp
        if self._scheme == 2:
            a = acts.reshape(n, -1)[:, 0].astype(np.float64)
            tg = where((a >= -1.0) & (a <= 1.0), a, where(a > 0.0, 1.0, -1.0)) * mx
            last = self._last_target
            send = ~np.isnan(tg) & (np.isnan(last) | (np.abs(tg - last) > self._tol))
        else:
            tg = self._table[acts.reshape(n).astype(np.int64)]
            tg = where(tg > mx, mx, where(tg < -mx, -mx, tg))
            last = self._last_target
            send = ~np.isnan(tg) & (tg != last)
        order = where(send, tg, np.nan)
        last = where(send, tg, last)
        e0 = acc.equity
        acc.step(order)
        e1 = acc.equity
        self._last_target = where(acc.liquidated, 0.0, where(acc.dropped, np.nan, last))
        self._steps += 1
        peak = where(e1 > self._peak, e1, self._peak)
        self._peak = peak
        dd = 1.0 - e1 / peak
        ratio = e1 / e0
        lr = np.array(list(map(math.log, where(ratio > LOG_FLOOR, ratio, LOG_FLOOR).tolist())))
        comps: dict[str, np.ndarray] = {"log_return": lr}
        if self._only_lr:
            reward = self._weights[0] * lr
        else:
            reward = self._general_reward(comps, e0, e1, lr, dd)
        self.last_equity = e1
        self.last_components = comps
        t = acc.t
        bankrupt = acc.bankrupt
        liq = acc.liquidated
        ddhit = dd >= self._max_dd
        terminated = bankrupt | liq | ddhit
        truncated = ~terminated & ((t >= self._last_bar) | (self._steps >= self._max_len))
        dones = terminated | truncated
        obs = self._observe(None)
        if self._full:
            infos = self._full_infos(comps, e1, dd, truncated)
        else:
            infos = [{} for _ in range(n)]
        if terminated.any():
            for i in np.flatnonzero(terminated).tolist():
                infos[i]["termination"] = "bankruptcy" if bankrupt[i] else ("liquidation" if liq[i] else "max_drawdown")
        if dones.any():
            idx = np.flatnonzero(dones)
            for i in idx.tolist():
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
                infos[i]["terminal_observation"] = self._obs_row(obs, i)
                self._reset_one(i, None, None)
            self._write_obs(obs, idx, self._observe(idx))
        return obs, reward.astype(np.float32), dones, infos

    def _general_reward(self, comps, e0, e1, lr, dd) -> np.ndarray:
        where = np.where
        acc = self.acc
        w = self._weights
        comps["drawdown_penalty"] = -dd
        if w[2] != 0.0 or self._detail:
            r = e1 / e0 - 1.0
            a = self._dsr_a
            b = self._dsr_b
            var = b - a * a
            ok = var > 1e-12
            sv = np.sqrt(where(ok, var, 1.0))
            dsr = where(ok, (b * (r - a) - 0.5 * a * (r * r - b)) / (var * sv), 0.0)
            dsr = where(dsr > DSR_CLIP, DSR_CLIP, where(dsr < -DSR_CLIP, -DSR_CLIP, dsr))
            self._dsr_a = a + self._eta * (r - a)
            self._dsr_b = b + self._eta * (r * r - b)
            comps["differential_sharpe"] = dsr
        else:
            comps["differential_sharpe"] = np.zeros(self.num_envs)
        comps["cost_penalty"] = (acc.fee_paid + acc.spread + acc.impact_cost + acc.liquidation_fee) / e0
        comps["idle_penalty"] = where(acc.units == 0.0, -1.0, 0.0)
        comps["trade_penalty"] = where(acc.filled != 0.0, -1.0, 0.0)
        comps["profitable_close_bonus"] = where(acc.closed & (acc.closed_return > 0.0), 1.0, 0.0)
        comps["excess_vs_buy_and_hold"] = lr - self.data.log_returns[acc.t]
        reward = np.zeros(self.num_envs)
        for i in self._active:
            reward = reward + w[i] * comps[REWARD_COMPONENTS[i]]
        return reward

    def _full_infos(self, comps, e1, dd, truncated) -> list[dict[str, Any]]:
        acc = self.acc
        cols: list[tuple[str, list]] = [("equity", e1.tolist()), ("level", self.level.tolist())]
        names = REWARD_COMPONENTS if self._detail else [REWARD_COMPONENTS[i] for i in self._active]
        cols += [("reward_" + name, comps[name].tolist()) for name in names]
        if self._detail:
            cols.append(("t", acc.t.tolist()))
            cols += [(name, getattr(acc, attr).tolist()) for name, attr in _LEDGER_ARRAYS]
            cols += [
                ("filled", acc.filled.tolist()),
                ("unfilled", acc.unfilled.tolist()),
                ("dropped", acc.dropped.tolist()),
                ("liquidated", acc.liquidated.tolist()),
                ("bankrupt", acc.bankrupt.tolist()),
                ("drawdown", dd.tolist()),
            ]
        cols.append(("TimeLimit.truncated", truncated.tolist()))
        keys = [k for k, _ in cols]
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*(v for _, v in cols), strict=True)]

    # ------------------------------------------------------------------ observations
    def _observe(self, idx: np.ndarray | None):
        acc = self.acc
        sel = slice(None) if idx is None else idx
        t = acc.t[sel]
        e = acc.equity[sel]
        start = self._start_equity[sel]
        floor = 1e-9 * start
        es = np.where(e > floor, e, floor)
        u = acc.units[sel]
        c = acc.mark[sel]
        entry = acc.entry[sel]
        uc = u * c
        hold = u != 0.0
        account = np.empty((len(t), 6), dtype=np.float32)
        account[:, 0] = np.where(hold, uc / es, 0.0)
        account[:, 1] = np.where(hold, u * (c - entry) / es, 0.0)
        account[:, 2] = e / start - 1.0
        account[:, 3] = np.where(hold, acc.bars[sel] * self._inv_ts, 0.0)
        account[:, 4] = np.where(hold, entry / c - 1.0, 0.0)
        account[:, 5] = np.where(hold, np.abs(uc) * self._im[sel] / es, 0.0)
        market = self._windows[t - (self.window - 1)]
        if self._flat:
            return np.concatenate((market.reshape(len(t), -1), account), axis=1)
        if self._m1d:
            market = market.reshape(len(t), -1)
        return {"market": market, "account": account}

    def _obs_row(self, obs, i: int):
        if self._flat:
            return obs[i].copy()
        return {k: v[i].copy() for k, v in obs.items()}

    def _write_obs(self, obs, idx: np.ndarray, new) -> None:
        if self._flat:
            obs[idx] = new
        else:
            for k in obs:
                obs[k][idx] = new[k]

    # ------------------------------------------------------------------ masks
    def action_masks(self) -> np.ndarray:
        """(num_envs, n_actions) valid-action masks, as ``TradingEnv.action_masks`` per env."""
        n = self.num_envs
        last = self._last_target
        if self._scheme == 2:
            return np.ones((n, 1), dtype=bool)
        if self._scheme == 0:
            s = self._table[1]
            return np.stack([np.ones(n, dtype=bool), last != s, last != -s, last != 0.0], axis=1)
        return np.abs(self._table)[None, :] <= self._max_exp[:, None] + 1e-12

    # ------------------------------------------------------------------ VecEnv plumbing
    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        if attr_name == "level":
            return [int(self.level[i]) for i in idx]
        return [getattr(self, attr_name, None)] * len(idx)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if attr_name == "level":
            for i in self._get_indices(indices):
                self.level[i] = int(value)
            return
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        if method_name == "report_score":
            return self.report_score(*method_args, indices=idx, **method_kwargs)
        raise AttributeError(f"TradingVecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs
