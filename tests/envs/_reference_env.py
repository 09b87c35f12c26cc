"""Reference ``TradingEnv``: the pure-Python environment as it was before its step was compiled
(commit ccaf647), on the reference kernel, kept verbatim as a test oracle for the compiled env.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import REWARD_COMPONENTS, TradingEnvConfig
from quant_arena.sim.kernel import LEDGER_FIELDS
from quant_arena.sim.market_data import MarketData
from tests.sim._reference import RefAccount as Account

NAN = math.nan
LOG_FLOOR = 1e-12
DSR_CLIP = 10.0
ACCOUNT_FEATURES: tuple[str, ...] = (
    "position",
    "unrealized_pnl",
    "equity_rel",
    "time_in_position",
    "entry_rel",
    "margin_used",
)
_CHUNK = 1024  # rows of account observations allocated at once
_pack_into = struct.Struct("6f").pack_into


def make_config(config: TradingEnvConfig | Mapping[str, Any] | None = None, **overrides: Any) -> TradingEnvConfig:
    """A validated config from a model, a mapping and/or keyword overrides."""
    if isinstance(config, TradingEnvConfig):
        base = config.model_dump()
        base["execution"] = config.execution
        base["curriculum"] = config.curriculum
    else:
        base = dict(config or {})
    base.update(overrides)
    return TradingEnvConfig.model_validate(base)


def as_market_data(data: MarketData | pd.DataFrame) -> MarketData:
    if isinstance(data, MarketData):
        return data
    if isinstance(data, pd.DataFrame):
        return MarketData.from_frame(data)
    raise TypeError(f"data must be a MarketData or a tidy DataFrame, got {type(data).__name__}")


class RefTradingEnv(gym.Env):
    """Single-asset trading environment on the shared execution kernel (see the module docstring).

    Args:
        data: a :class:`MarketData` (shared, never copied) or a tidy feature table.
        config: a :class:`TradingEnvConfig` or a mapping; keyword arguments override fields.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(  # noqa: PLR0915 - builds spaces, tables and state in one place
        self,
        data: MarketData | pd.DataFrame,
        config: TradingEnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        cfg = make_config(config, **overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} not in {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.cfg = cfg
        self.data = data = as_market_data(data)
        self.plan = EpisodePlan(data, cfg)
        self.window = cfg.window
        n_feat = data.n_features
        self._features = data.features
        self._flat_features = data.features.reshape(-1)
        # zero-copy (T - window + 1, window, F) view: row t - window + 1 is the window ending at t
        self._windows = np.lib.stride_tricks.sliding_window_view(data.features, (cfg.window, n_feat))[:, 0]
        self._w1 = cfg.window - 1
        self._c = memoryview(data.close)
        self._alr = memoryview(data.log_returns)
        self._last_bar = len(data) - 1
        cur = cfg.curriculum
        self.level = cur.start_level if cur is not None else 0
        self.account = Account(data, self.plan.exec_configs[self.level], cfg.initial_equity, record=cfg.record_ledger)
        # ---- spaces
        big = float(np.finfo(np.float32).max)  # finite bounds: features are finite float32 by construction
        self._m1d = cfg.observation == "dict_1d"
        mshape = (cfg.window * n_feat,) if self._m1d else (cfg.window, n_feat)
        market = spaces.Box(-big, big, shape=mshape, dtype=np.float32)
        account = spaces.Box(-big, big, shape=(6,), dtype=np.float32)
        self._flat = cfg.observation == "flat"
        if self._flat:
            self.observation_space = spaces.Box(-big, big, shape=(cfg.window * n_feat + 6,), dtype=np.float32)
        else:
            self.observation_space = spaces.Dict({"market": market, "account": account})
        self._scheme = {"discrete": 0, "discrete_targets": 1, "continuous": 2}[cfg.action_scheme]
        if self._scheme == 0:
            s = float(cfg.position_size)
            self._targets = [NAN, s, -s, 0.0]
            self.action_space = spaces.Discrete(4)
        elif self._scheme == 1:
            self._targets = [float(x) for x in cfg.target_exposures]
            self.action_space = spaces.Discrete(len(self._targets))
        else:
            self._targets = []
            self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        # ---- reward weights in REWARD_COMPONENTS order
        w = cfg.reward
        self._weights = tuple(float(w.get(name, 0.0)) for name in REWARD_COMPONENTS)
        self._active = tuple(i for i, x in enumerate(self._weights) if x != 0.0)
        self._only_lr = self._active == (0,) and not cfg.info_detail
        self._w_lr = self._weights[0]
        self._detail = cfg.info_detail
        self._max_dd = cfg.max_drawdown if cfg.max_drawdown is not None else math.inf
        self._inv_ts = 1.0 / cfg.time_scale
        self._eta = cfg.dsr_eta
        self._tol = cfg.rebalance_tolerance
        self._apply_level()
        self._acc_buf = np.zeros((_CHUNK, 6), dtype=np.float32)
        self._acc_row = 0
        # market windows are handed out from blocks of at most ~1 MB, refilled as time moves on
        self._mk_rows = int(max(16, min(_CHUNK, (1 << 20) // (4 * cfg.window * n_feat))))
        self._mk_chunk = np.zeros((0,), dtype=np.float32)
        self._mk_base = 0
        self._mk_len = 0
        self._steps = 0
        self._start_equity = cfg.initial_equity
        self._eq_floor = 1e-9 * cfg.initial_equity
        self._peak = cfg.initial_equity
        self._last_target = 0.0
        self._dsr_a = 0.0
        self._dsr_b = 0.0

    # ------------------------------------------------------------------ curriculum
    def _apply_level(self) -> None:
        ex = self.plan.exec_configs[self.level]
        self.account.configure(ex)
        self._max_exp = mx = ex.max_exposure
        self._clipped = [x if not x > mx else mx for x in self._targets]
        self._clipped = [x if not x < -mx else -mx for x in self._clipped]
        self._im = ex.effective_initial_margin
        self._max_len = self.plan.max_steps(self.level) or (1 << 62)

    def report_score(self, score: float) -> bool:
        """Move up one curriculum level when ``score`` passes the current level's threshold.

        Returns True when the level changed; the new level applies from the next reset.
        """
        cur = self.cfg.curriculum
        if cur is None or self.level >= len(cur.levels) - 1:
            return False
        if score >= cur.thresholds[self.level]:
            self.level += 1
            return True
        return False

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "level" in options:
            self.level = int(options["level"])
        self._apply_level()
        start = self.plan.start(self.level, self.np_random)
        if options and "start" in options:
            start = int(options["start"])
        eq = self.cfg.initial_equity
        self.account.reset(start, eq)
        self._steps = 0
        self._start_equity = eq
        self._eq_floor = 1e-9 * eq
        self._peak = eq
        self._last_target = 0.0
        self._dsr_a = 0.0
        self._dsr_b = 0.0
        self._acc_buf = np.zeros((_CHUNK, 6), dtype=np.float32)
        self._acc_row = 0
        self._mk_len = 0
        return self._observe(), {"equity": eq, "level": self.level, "t": start}

    def step(self, action):  # noqa: PLR0912, PLR0915 - the hot path, kept flat on purpose
        acc = self.account
        scheme = self._scheme
        if scheme == 2:
            a = float(action[0])
            tg = (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * self._max_exp
        else:
            tg = self._clipped[action]  # targets clipped to the level's exposure cap
        last = self._last_target
        order = NAN
        if tg == tg:  # noqa: PLR0124 - NaN test (hold)
            if scheme != 2:
                if tg != last:  # also when last is NaN (unknown after a dropped order)
                    order = self._last_target = tg
            elif last != last or abs(tg - last) > self._tol:  # noqa: PLR0124
                order = self._last_target = tg
        e0 = acc.equity
        acc.step(order)
        e1 = acc.equity
        if acc.liquidated:
            self._last_target = 0.0
        elif acc.dropped:
            self._last_target = NAN
        self._steps += 1
        peak = self._peak
        if e1 > peak:
            peak = self._peak = e1
        dd = 1.0 - e1 / peak
        ratio = e1 / e0
        lr = math.log(ratio if ratio > LOG_FLOOR else LOG_FLOOR)
        if self._only_lr:
            reward = self._w_lr * lr
            info = {"equity": e1, "level": self.level, "reward_log_return": lr}
        else:
            reward, info = self._reward_info(acc, e0, e1, lr, dd)
        t = acc.t
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
        truncated = not terminated and (t >= self._last_bar or self._steps >= self._max_len)
        if self._flat:
            return self._observe(), reward, terminated, truncated, info
        # the dict observation, inlined (the hot path)
        e = e1
        es = e if e > self._eq_floor else self._eq_floor
        u = acc.units
        row = self._acc_row
        buf = self._acc_buf
        if row == _CHUNK:
            buf = self._acc_buf = np.zeros((_CHUNK, 6), dtype=np.float32)
            row = 0
        self._acc_row = row + 1
        if u != 0.0:
            c = acc.mark
            uc = u * c
            entry = acc.entry
            _pack_into(buf, row * 24, uc / es, u * (c - entry) / es, e / self._start_equity - 1.0,
                       acc.bars * self._inv_ts, entry / c - 1.0, abs(uc) * self._im / es)
        else:
            _pack_into(buf, row * 24, 0.0, 0.0, e / self._start_equity - 1.0, 0.0, 0.0, 0.0)
        i = t - self._mk_base
        if i >= self._mk_len:
            i = self._refill_market(t)
        return {"market": self._mk_chunk[i], "account": buf[row]}, reward, terminated, truncated, info

    def _reward_info(self, acc: Account, e0: float, e1: float, lr: float, dd: float) -> tuple[float, dict[str, Any]]:
        """All reward components (the general path) and the info dict."""
        w = self._weights
        detail = self._detail
        comps = [0.0] * 8
        comps[0] = lr
        comps[1] = -dd
        if w[2] != 0.0 or detail:
            r = e1 / e0 - 1.0
            a = self._dsr_a
            b = self._dsr_b
            var = b - a * a
            if var > 1e-12:
                dsr = (b * (r - a) - 0.5 * a * (r * r - b)) / (var * math.sqrt(var))
                dsr = DSR_CLIP if dsr > DSR_CLIP else (-DSR_CLIP if dsr < -DSR_CLIP else dsr)
            else:
                dsr = 0.0
            self._dsr_a = a + self._eta * (r - a)
            self._dsr_b = b + self._eta * (r * r - b)
            comps[2] = dsr
        comps[3] = (acc.fee + acc.spread + acc.impact + acc.liquidation_fee) / e0
        comps[4] = -1.0 if acc.units == 0.0 else 0.0
        comps[5] = -1.0 if acc.filled != 0.0 else 0.0
        comps[6] = 1.0 if acc.closed and acc.closed_return > 0.0 else 0.0
        comps[7] = lr - self._alr[acc.t]
        reward = 0.0
        for i in self._active:
            reward += w[i] * comps[i]
        info: dict[str, Any] = {"equity": e1, "level": self.level}
        for i in range(8) if detail else self._active:
            info["reward_" + REWARD_COMPONENTS[i]] = comps[i]
        if detail:
            info["t"] = acc.t
            for name in LEDGER_FIELDS:
                info[name] = getattr(acc, name)
            info["filled"] = acc.filled
            info["unfilled"] = acc.unfilled
            info["dropped"] = acc.dropped
            info["liquidated"] = acc.liquidated
            info["bankrupt"] = acc.bankrupt
            info["drawdown"] = dd
        return reward, info

    def _observe(self):
        acc = self.account
        t = acc.t
        e = acc.equity
        es = e if e > self._eq_floor else self._eq_floor
        u = acc.units
        c = acc.mark
        row = self._acc_row
        buf = self._acc_buf
        if row == _CHUNK:
            buf = self._acc_buf = np.zeros((_CHUNK, 6), dtype=np.float32)
            row = 0
        self._acc_row = row + 1
        if u != 0.0:
            uc = u * c
            entry = acc.entry
            _pack_into(buf, row * 24, uc / es, u * (c - entry) / es, e / self._start_equity - 1.0,
                       acc.bars * self._inv_ts, entry / c - 1.0, abs(uc) * self._im / es)
        else:
            _pack_into(buf, row * 24, 0.0, 0.0, e / self._start_equity - 1.0, 0.0, 0.0, 0.0)
        w = self.window
        if self._flat:
            f = self._features.shape[1]
            out = np.empty(w * f + 6, dtype=np.float32)
            out[: w * f] = self._flat_features[(t - w + 1) * f : (t + 1) * f]
            out[w * f :] = buf[row]
            return out
        i = t - self._mk_base
        if not 0 <= i < self._mk_len:
            i = self._refill_market(t)
        return {"market": self._mk_chunk[i], "account": buf[row]}

    def _refill_market(self, t: int) -> int:
        """Copy the next block of observation windows (one memcpy for many steps).

        Row ``i`` of the block is the window ending at bar ``base + i``; each step hands out one
        row (a view of a row nobody else gets: fresh data per call, as gymnasium requires). The
        block is a cache of the shared features, not an observation: step ``t`` sees row ``t``.
        """
        end = min(t + self._mk_rows, self._last_bar + 1)
        block = self._windows[t - self._w1 : end - self._w1]
        self._mk_chunk = block.reshape(len(block), -1) if self._m1d else block.copy()
        if self._m1d:
            self._mk_chunk = self._mk_chunk.copy()
        self._mk_base = t
        self._mk_len = end - t
        return 0

    def action_masks(self) -> np.ndarray:
        """Valid actions for MaskablePPO: no redundant order, nothing above the leverage cap."""
        if self._scheme == 2:
            return np.ones(1, dtype=bool)
        last = self._last_target
        tol = 1e-12
        if self._scheme == 0:
            s = self._targets[1]
            return np.array([True, last != s, last != -s, last != 0.0], dtype=bool)
        return np.array([abs(x) <= self._max_exp + tol for x in self._targets], dtype=bool)

    def render(self):
        if self.render_mode == "ansi":
            a = self.account
            return f"t={a.t} close={a.mark:.6g} units={a.units:.6g} equity={a.equity:.6g} level={self.level}"
        return None

    # ------------------------------------------------------------------ helpers
    @property
    def account_features(self) -> tuple[str, ...]:
        return ACCOUNT_FEATURES
