"""`TradingEnv`: one asset, one account, the `sim/` execution kernel, Gymnasium API.

Example::

    import gymnasium as gym
    import quant_arena.envs  # registers quant_arena/Trading-v0
    from quant_arena.sim import ExecutionConfig, MarketData

    data = MarketData.from_frame(features_table)          # tidy OHLCV + feature columns
    env = gym.make("quant_arena/Trading-v0", data=data, window=30,
                   execution=ExecutionConfig(taker_fee=0.001, slippage_bps=2))
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

Timing: after ``reset`` the env sits on bar ``t`` after its close and the observation shows
bars ``t - window + 1 .. t``. ``step(action)`` turns the action into an order decided on that
close; it fills at bar ``t + fill_delay``'s open; the env advances to bar ``t + 1`` and
observes it. Observations at step ``t`` use bars ``<= t`` only (tested).

Observation (``observation="dict"``): ``market`` = the feature window (window x F, float32;
gymnasium requires new observation data on every call, so windows are copied out of a zero-copy
sliding-window view of the shared array in blocks of up to ~1 MB and handed out one row per step) and ``account`` (6 float32): position (value / equity),
unrealised PnL / equity, equity / initial - 1, bars in position / time_scale, entry price /
close - 1, initial margin used / equity. ``observation="dict_1d"``: the same with ``market``
flattened to (window * F,) (SB3's ``check_env`` warns about any 2-D Box, so this is the variant
for ``MultiInputPolicy``). ``observation="flat"``: one 1-D Box, market then account.

Actions: ``discrete`` = {0 hold, 1 long, 2 short, 3 close} with exposure ``position_size``;
``discrete_targets`` = index into ``target_exposures``; ``continuous`` = Box(-1, 1) scaled to
``[-max_exposure, max_exposure]``. An order is sent only when the target changes (by more than
``rebalance_tolerance``); :meth:`action_masks` marks redundant or over-leveraged actions.

Non-finite feature values are replaced by 0 when the :class:`MarketData` is built (counted
there) and episodes start after the leading warm-up rows, so observations never hold NaN/inf.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import REWARD_COMPONENTS, TradingEnvConfig
from quant_arena.sim import LEDGER_FIELDS, Account, MarketData
from quant_arena.sim import compiled as J

NAN = math.nan
LOG_FLOOR = J.LOG_FLOOR
DSR_CLIP = J.DSR_CLIP
ACCOUNT_FEATURES: tuple[str, ...] = (
    "position",
    "unrealized_pnl",
    "equity_rel",
    "time_in_position",
    "entry_rel",
    "margin_used",
)
_CHUNK = 1024  # rows of account observations allocated at once
_TERMINATION = (None, "bankruptcy", "liquidation", "max_drawdown")


def as_market_data(data: MarketData | pd.DataFrame) -> MarketData:
    """``data`` itself, or a :class:`MarketData` built from a tidy feature table."""
    if isinstance(data, MarketData):
        return data
    if isinstance(data, pd.DataFrame):
        return MarketData.from_frame(data)
    raise TypeError(f"data must be a MarketData or a tidy DataFrame, got {type(data).__name__}")


class TradingEnv(gym.Env):
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
        cfg = TradingEnvConfig.make(config, **overrides)
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
        self._detail = cfg.info_detail
        self._max_dd = cfg.max_drawdown if cfg.max_drawdown is not None else math.inf
        self._inv_ts = 1.0 / cfg.time_scale
        self._eta = cfg.dsr_eta
        self._tol = cfg.rebalance_tolerance
        # ---- the compiled step's per-env state (one column) and constants, in the account's context
        self._E = np.zeros((J.NE, 1))
        self._EI = np.zeros((J.NEI, 1), dtype=np.int64)
        self._G = np.zeros(J.NG)
        self._ev = memoryview(self._E.reshape(-1))
        self._G[J.G_W0 : J.G_W0 + 8] = self._weights
        self._G[J.G_MAXDD] = self._max_dd
        self._G[J.G_INV_TS] = self._inv_ts
        self._G[J.G_ETA] = self._eta
        self._G[J.G_TOL] = self._tol
        x = self.account.arrays.ctx
        x[J.X_E] = J.address(self._E)
        x[J.X_EI] = J.address(self._EI)
        x[J.X_G] = J.address(self._G)
        x[J.X_SCHEME] = self._scheme
        x[J.X_ONLY_LR] = self._only_lr
        x[J.X_DSR_ON] = self._weights[2] != 0.0 or self._detail
        x[J.X_LAST_BAR] = self._last_bar
        self._ctx = x
        self._addr = self.account._addr
        self._apply_level()
        self._new_acc_buf()
        # market windows are handed out from blocks of at most ~1 MB, refilled as time moves on
        self._mk_rows = int(max(16, min(_CHUNK, (1 << 20) // (4 * cfg.window * n_feat))))
        self._mk_chunk = np.zeros((0,), dtype=np.float32)
        self._mk_rows_out: list[np.ndarray] = []
        self._mk_base = 0
        self._mk_len = 0
        self._start_state(cfg.initial_equity)

    # ------------------------------------------------------------------ curriculum
    def _apply_level(self) -> None:
        ex = self.plan.exec_configs[self.level]
        self.account.configure(ex)
        self._max_exp = mx = ex.max_exposure
        self._clipped = [x if not x > mx else mx for x in self._targets]
        self._clipped = [x if not x < -mx else -mx for x in self._clipped]
        self._im = ex.effective_initial_margin
        self._max_len = self.plan.max_steps(self.level) or (1 << 62)
        self._E[J.E_MAXEXP, 0] = mx
        self._E[J.E_IM, 0] = self._im
        self._EI[J.EI_MAXLEN, 0] = self._max_len

    def _start_state(self, eq: float) -> None:
        """The env's per-episode state at a reset with equity ``eq``."""
        E = self._E
        E[J.E_PEAK, 0] = eq
        E[J.E_LAST, 0] = 0.0
        E[J.E_DSR_A, 0] = 0.0
        E[J.E_DSR_B, 0] = 0.0
        E[J.E_START, 0] = eq
        E[J.E_FLOOR, 0] = 1e-9 * eq
        self._EI[J.EI_STEPS, 0] = 0

    def _new_acc_buf(self) -> None:
        """A fresh block of account-observation rows (rows handed out are never written again)."""
        self._acc_buf = np.zeros((_CHUNK, 6), dtype=np.float32)
        self._acc_rows = list(self._acc_buf)  # the row views, made at once (cheaper than per step)
        self._acc_row = 0
        self._ctx[J.X_ACC_OUT] = J.address(self._acc_buf)

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
        self._start_state(eq)
        self._new_acc_buf()
        self._mk_len = 0
        return self._observe(), {"equity": eq, "level": self.level, "t": start}

    def step(self, action):
        if self._scheme == 2:
            a = float(action[0])
            tg = (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * self._max_exp
        else:
            tg = self._clipped[action]  # targets clipped to the level's exposure cap
        row = self._acc_row
        if row == _CHUNK:
            self._new_acc_buf()
            row = 0
        self._acc_row = row + 1
        # order, account step, reward, termination and the account observation row, compiled
        reward, e1, lr, t, code = J.env_step(self._addr, tg, row)
        if self._only_lr:
            info = {"equity": e1, "level": self.level, "reward_log_return": lr}
        else:
            info = self._info(e1)
        terminated = truncated = False
        if code:
            if code & 3:
                terminated = True
                info["termination"] = _TERMINATION[code & 3]
            else:
                truncated = True
        if self._flat:
            return self._flat_obs(t, row), reward, terminated, truncated, info
        i = t - self._mk_base
        if i >= self._mk_len:
            i = self._refill_market(t)
        return {"market": self._mk_rows_out[i], "account": self._acc_rows[row]}, reward, terminated, truncated, info

    def _info(self, e1: float) -> dict[str, Any]:
        """The info dict of the general reward path (components computed by the compiled step)."""
        comps = self._E[J.E_C0 : J.E_C0 + 8, 0].tolist()
        info: dict[str, Any] = {"equity": e1, "level": self.level}
        detail = self._detail
        for i in range(8) if detail else self._active:
            info["reward_" + REWARD_COMPONENTS[i]] = comps[i]
        if detail:
            acc = self.account
            info["t"] = acc.t
            for name in LEDGER_FIELDS:
                info[name] = getattr(acc, name)
            info["filled"] = acc.filled
            info["unfilled"] = acc.unfilled
            info["dropped"] = acc.dropped
            info["liquidated"] = acc.liquidated
            info["bankrupt"] = acc.bankrupt
            info["drawdown"] = self._ev[J.E_DD]
        return info

    def _observe(self):
        row = self._acc_row
        if row == _CHUNK:
            self._new_acc_buf()
            row = 0
        self._acc_row = row + 1
        J.env_observe(self._addr, row)
        return self._obs_at(row)

    def _obs_at(self, row: int):
        """The observation at the account's bar, with account row ``row`` (just written)."""
        t = self.account.t
        if self._flat:
            return self._flat_obs(t, row)
        i = t - self._mk_base
        if not 0 <= i < self._mk_len:
            i = self._refill_market(t)
        return {"market": self._mk_rows_out[i], "account": self._acc_rows[row]}

    def _flat_obs(self, t: int, row: int) -> np.ndarray:
        w = self.window
        f = self._features.shape[1]
        out = np.empty(w * f + 6, dtype=np.float32)
        out[: w * f] = self._flat_features[(t - w + 1) * f : (t + 1) * f]
        out[w * f :] = self._acc_buf[row]
        return out

    def _refill_market(self, t: int) -> int:
        """Copy the next block of observation windows (one memcpy for many steps).

        Row ``i`` of the block is the window ending at bar ``base + i``; each step hands out one
        row (a view of a row nobody else gets: fresh data per call, as gymnasium requires). The
        block is a cache of the shared features, not an observation: step ``t`` sees row ``t``.
        """
        end = min(t + self._mk_rows, self._last_bar + 1)
        block = self._windows[t - self._w1 : end - self._w1]
        chunk = block.copy()  # one memcpy (the view's rows overlap: a copy per row otherwise)
        self._mk_chunk = chunk.reshape(len(block), -1) if self._m1d else chunk
        self._mk_rows_out = list(self._mk_chunk)  # the row views, made at once
        self._mk_base = t
        self._mk_len = end - t
        return 0

    def action_masks(self) -> np.ndarray:
        """Valid actions for MaskablePPO: no redundant order, nothing above the leverage cap."""
        if self._scheme == 2:
            return np.ones(1, dtype=bool)
        last = self._ev[J.E_LAST]
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

    # ------------------------------------------------------------------ carry-over
    def target_of(self, action: Any) -> float:
        """The target exposure :meth:`step` orders for ``action`` (NaN: no order, e.g. ``hold``)."""
        if self._scheme == 2:
            a = float(np.asarray(action).reshape(-1)[0])
            return (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * self._max_exp
        return self._clipped[int(np.asarray(action).reshape(-1)[0])]

    def step_target(self, target: float) -> Any:
        """:meth:`step` with the order given as a target exposure (NaN: none) instead of an
        action; ``step(a)`` is ``step_target(target_of(a))`` (the same compiled call). Returns the
        observation only (the reward and episode flags are training devices).
        Paper trading uses it: its pending order is a target, so it survives a change of model."""
        row = self._acc_row
        if row == _CHUNK:
            self._new_acc_buf()
            row = 0
        self._acc_row = row + 1
        J.env_step(self._addr, float(target), row)
        return self._obs_at(row)

    def snapshot(self) -> dict[str, Any]:
        """A copy of everything the next :meth:`step` reads besides the market data: the
        account's state and order queue, the episode's state (peak, last target, DSR moments,
        steps) and the curriculum level.

        :meth:`restore` writes it into another env with the same config built on data that
        holds the same rows up to the account's bar (and possibly more): its next step is then
        bit for bit the step this env would take. Paper trading builds a new env each time a
        bar arrives and carries the state over this way (``quant_arena.ops.paper``).
        """
        arr = self.account.arrays
        return {
            "F": arr.F[:, 0].copy(),
            "I": arr.IS[:, 0].copy(),
            "B": arr.B[:, 0].copy(),
            "Q": arr.Q[0].copy(),
            "E": self._E[:, 0].copy(),
            "EI": self._EI[:, 0].copy(),
            "level": int(self.level),
        }

    def restore(self, state: Mapping[str, Any]) -> Any:
        """Continue from a :meth:`snapshot` (see there); returns the observation at the
        snapshot's bar (the one the env would have returned there)."""
        arr = self.account.arrays
        parts = {"F": (arr.F, J.NF), "I": (arr.IS, J.NI), "B": (arr.B, J.NB), "E": (self._E, J.NE), "EI": (self._EI, J.NEI)}
        missing = [k for k in (*parts, "Q", "level") if k not in state]
        if missing:
            raise ValueError(f"TradingEnv.restore: the snapshot lacks {missing}")
        for key, (target, n) in parts.items():
            value = np.asarray(state[key])
            if value.shape != (n,):
                raise ValueError(f"TradingEnv.restore: snapshot {key!r} has shape {value.shape}, expected ({n},)")
        q = np.asarray(state["Q"], dtype=np.float64)
        if q.shape != (arr.delay,):
            raise ValueError(
                f"TradingEnv.restore: the snapshot's order queue holds {q.shape[0] if q.ndim else 0} bars, "
                f"this env's fill_delay is {arr.delay}"
            )
        t = int(state["I"][J.I_T])
        if not 0 <= t <= self._last_bar:
            raise ValueError(f"TradingEnv.restore: the snapshot sits on bar {t}, outside this env's data (0..{self._last_bar})")
        level = int(state["level"])
        if not 0 <= level < len(self.plan.exec_configs):
            raise ValueError(f"TradingEnv.restore: curriculum level {level} does not exist in this env")
        self.level = level
        for key, (target, _) in parts.items():
            target[:, 0] = np.asarray(state[key], dtype=target.dtype)
        arr.Q[0] = q
        self._apply_level()  # this env's limits (exposure cap, margin, episode length) stand
        self._new_acc_buf()
        self._mk_len = 0
        return self._observe()

    # ------------------------------------------------------------------ helpers
    @property
    def account_features(self) -> tuple[str, ...]:
        return ACCOUNT_FEATURES
