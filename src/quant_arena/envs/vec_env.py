"""`TradingVecEnv`: N TradingEnv copies stepped in one call (an SB3 VecEnv).

Every copy shares the one :class:`MarketData` (no per-env copy of prices or features) and the
accounts are a :class:`~quant_arena.sim.batch.BatchAccounts`. One step is one compiled call
(:func:`quant_arena.sim.compiled.vec_step`) that, per env, turns the action into an order, steps the
account, computes the reward and the termination flags, and writes the observation (market
window gathered from the shared features, account row), the float32 reward and the done flag
straight into preallocated output blocks. The trajectories are exactly those of N separate
:class:`TradingEnv` s wrapped in SB3's ``DummyVecEnv`` with the same seeds (``vec.seed(s)`` seeds
env ``i`` with ``s + i``): same observations, rewards, dones and info numbers (tested with
``np.testing.assert_array_equal``; both run the same compiled per-env step). Auto-reset follows
SB3: a finished env's last observation is in ``info["terminal_observation"]``,
``info["TimeLimit.truncated"]`` tells a truncation, and the returned observation is the first one
of the next episode.

Returned arrays are fresh memory on every step (rows of output blocks of ~1 MB that are never
written again once handed out), as ``DummyVecEnv``'s copies are: a consumer may keep them (SB3's
off-policy algorithms keep the previous step's observation object) without seeing it change.

``info="full"`` (default) gives each env the same info dict as ``TradingEnv``;
``info="lean"`` leaves the numbers in arrays (:attr:`last_equity`, :attr:`last_components`,
...): a finished env gets a fresh dict with the SB3 keys (``terminal_observation``,
``TimeLimit.truncated``, ``termination``), every other env the one shared *read-only* empty dict
(building 64 fresh empty dicts per step would cost about as much as the whole compiled step; SB3
only ever writes into finished envs' infos, and a write into the shared one raises ``TypeError``
instead of leaking into other envs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import REWARD_COMPONENTS, TradingEnvConfig
from quant_arena.envs.trading_env import TradingEnv, as_market_data
from quant_arena.sim import BatchAccounts, MarketData
from quant_arena.sim import compiled as J

_LEDGER_ROWS = (
    ("pnl", J.F_PNL), ("fee", J.F_FEE), ("spread", J.F_SPREAD), ("impact", J.F_IMPACT),
    ("funding", J.F_FUNDING), ("swap", J.F_SWAP), ("liquidation_fee", J.F_LFEE),
)
_TERMINATION = (None, "bankruptcy", "liquidation", "max_drawdown")
_BLOCK_BYTES = 1 << 20  # output block size (observations, rewards, dones of several steps)


class _EmptyInfo(dict):
    """The read-only empty info dict that ``info="lean"`` shares between unfinished envs.

    Writing into it raises ``TypeError`` (SB3 itself only writes into the infos of finished envs,
    which are fresh dicts); ``copy()`` gives an ordinary dict.
    """

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("lean infos of unfinished envs are a shared read-only empty dict: copy() it to add keys")

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = setdefault = pop = popitem = clear = _read_only

    def copy(self) -> dict:
        return {}

    def __reduce__(self):
        return (dict, ())


_EMPTY_INFO = _EmptyInfo()


class TradingVecEnv(VecEnv):
    """Batched :class:`TradingEnv` (see the module docstring).

    Args:
        data: shared :class:`MarketData` (or a tidy feature table, converted once).
        num_envs: number of environment copies.
        config: a :class:`TradingEnvConfig` or mapping; keyword arguments override fields.
        info: ``"full"`` or ``"lean"`` info dicts.
    """

    def __init__(  # noqa: PLR0915 - spaces, tables, state and output blocks in one place
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
        cfg = TradingEnvConfig.make(config, **overrides)
        self.cfg = cfg
        self.data = data = as_market_data(data)
        self.render_mode = None
        proto = TradingEnv(data, cfg)  # spaces, action tables and constants, identical to a single env
        super().__init__(num_envs, proto.observation_space, proto.action_space)
        n = num_envs
        self.plan: EpisodePlan = proto.plan
        self._full = info == "full"
        self._detail = cfg.info_detail
        self._scheme = proto._scheme
        self._n_targets = len(proto._targets)
        self._table = np.array(proto._targets if proto._targets else [np.nan], dtype=np.float64)
        self._active = proto._active
        self._only_lr = proto._only_lr
        self._flat = proto._flat
        self._m1d = proto._m1d
        self.window = w = cfg.window
        feats = data.features
        n_feat = feats.shape[1]
        self._windows = np.lib.stride_tricks.sliding_window_view(feats, (w, n_feat))[:, 0]
        self._last_bar = len(data) - 1
        cur = cfg.curriculum
        start_level = cur.start_level if cur is not None else 0
        self.level = np.full(n, start_level, dtype=np.int64)
        self.acc = BatchAccounts(data, n, self.plan.exec_configs[start_level], cfg.initial_equity)
        # ---- the compiled step's per-env state and constants, in the accounts' context
        self._E = np.zeros((J.NE, n))
        self._EI = np.zeros((J.NEI, n), dtype=np.int64)
        self._G = proto._G.copy()
        self._act_i = np.zeros(n, dtype=np.int64)
        self._act_f = np.zeros(n)
        x = self._ctx = self.acc.arrays.ctx
        self._addr = self.acc.arrays.addr
        x[J.X_E] = J.address(self._E)
        x[J.X_EI] = J.address(self._EI)
        x[J.X_G] = J.address(self._G)
        for slot in (J.X_SCHEME, J.X_ONLY_LR, J.X_DSR_ON, J.X_LAST_BAR):
            x[slot] = proto._ctx[slot]
        x[J.X_FEAT] = J.address(feats)
        x[J.X_W] = w
        x[J.X_NFEAT] = n_feat
        x[J.X_TABLE] = J.address(self._table)
        x[J.X_NTAB] = self._n_targets
        x[J.X_ACT_I] = J.address(self._act_i)
        x[J.X_ACT_F] = J.address(self._act_f)
        wf = w * n_feat
        if self._flat:
            x[J.X_MK_STRIDE] = x[J.X_AC_STRIDE] = wf + 6
            x[J.X_MK_STEP] = x[J.X_AC_STEP] = n * (wf + 6)
        else:
            x[J.X_MK_STRIDE] = wf
            x[J.X_MK_STEP] = n * wf
            x[J.X_AC_STRIDE] = 6
            x[J.X_AC_STEP] = n * 6
        self._wf = wf
        self._mshape = (w, n_feat) if not (self._m1d or self._flat) else (wf,)
        self._block_steps = max(1, _BLOCK_BYTES // (n * (4 * (wf + 6) + 5)))
        self._new_blocks()
        for i in range(n):
            self._apply_level(i)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._actions: np.ndarray | None = None

    # ------------------------------------------------------------------ output blocks
    def _new_blocks(self) -> None:
        """Fresh output blocks; row ``s`` of each is step ``s``'s output, handed out once."""
        n, k, x = self.num_envs, self._block_steps, self._ctx
        if self._flat:
            obs = np.empty((k, n, self._wf + 6), dtype=np.float32)
            x[J.X_MK_OUT] = J.address(obs)
            x[J.X_AC_OUT] = x[J.X_MK_OUT] + 4 * self._wf
            self._obs_rows = list(obs)
        else:
            mk = np.empty((k, n, *self._mshape), dtype=np.float32)
            ac = np.empty((k, n, 6), dtype=np.float32)
            x[J.X_MK_OUT] = J.address(mk)
            x[J.X_AC_OUT] = J.address(ac)
            self._obs_rows = [{"market": m, "account": a} for m, a in zip(mk, ac, strict=True)]
        rw = np.empty((k, n), dtype=np.float32)
        dn = np.empty((k, n), dtype=np.bool_)
        x[J.X_RW_OUT] = J.address(rw)
        x[J.X_DN_OUT] = J.address(dn)
        self._rw_rows = list(rw)
        self._dn_rows = list(dn)
        self._blocks = (self._obs_rows, rw, dn)  # kept alive while their addresses are in the context
        self._s = 0

    def _next_row(self) -> int:
        s = self._s
        if s == self._block_steps:
            self._new_blocks()
            s = 0
        self._s = s + 1
        return s

    # ------------------------------------------------------------------ curriculum
    def _apply_level(self, i: int) -> None:
        level = int(self.level[i])
        ex = self.plan.exec_configs[level]
        self.acc.configure(i, ex)
        self._E[J.E_MAXEXP, i] = ex.max_exposure
        self._E[J.E_IM, i] = ex.effective_initial_margin
        self._EI[J.EI_MAXLEN, i] = self.plan.max_steps(level) or (1 << 62)

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
        E = self._E
        E[J.E_PEAK, i] = eq
        E[J.E_LAST, i] = 0.0
        E[J.E_DSR_A, i] = 0.0
        E[J.E_DSR_B, i] = 0.0
        E[J.E_START, i] = eq
        E[J.E_FLOOR, i] = 1e-9 * eq
        self._EI[J.EI_STEPS, i] = 0

    def reset(self):
        for i in range(self.num_envs):
            self._reset_one(i, self._seeds[i], self._options[i])
        t = self.acc.arrays.IS[J.I_T]
        self.reset_infos = [
            {"equity": self.cfg.initial_equity, "level": int(self.level[i]), "t": int(t[i])}
            for i in range(self.num_envs)
        ]
        self._reset_seeds()
        self._reset_options()
        s = self._next_row()
        J.vec_observe(self._addr, s, -1)
        return self._obs_rows[s]

    # ------------------------------------------------------------------ step
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step(self, actions: np.ndarray):
        """``step_async`` + ``step_wait`` in one call (the VecEnv hot path)."""
        self._actions = actions
        return self.step_wait()

    def step_wait(self):
        n = self.num_envs
        acts = self._actions
        if self._scheme == 2:
            np.copyto(self._act_f, np.reshape(acts, (n, -1))[:, 0], casting="unsafe")
        else:
            np.copyto(self._act_i, np.reshape(acts, n), casting="unsafe")
        s = self._s
        if s == self._block_steps:
            self._new_blocks()
            s = 0
        self._s = s + 1
        ndone = J.vec_step(self._addr, s)
        if ndone < 0:
            j = -1 - ndone
            raise IndexError(f"action {self._act_i[j]} of env {j} outside the {self._n_targets} discrete actions")
        obs = self._obs_rows[s]
        if self._full:
            infos = self._full_infos()
        else:
            infos = [_EMPTY_INFO] * n
        if ndone:
            term = self._EI[J.EI_TERM]
            trunc = self._EI[J.EI_TRUNC]
            for i in np.flatnonzero(self._dn_rows[s]).tolist():
                info = infos[i] if self._full else {}
                infos[i] = info
                code = int(term[i])
                if code:
                    info["termination"] = _TERMINATION[code]
                info["TimeLimit.truncated"] = bool(trunc[i])
                info["terminal_observation"] = self._obs_row(obs, i)
                self._reset_one(i, None, None)
                J.vec_observe(self._addr, s, i)
        return obs, self._rw_rows[s], self._dn_rows[s], infos

    def _components(self) -> dict[str, np.ndarray]:
        E = self._E
        if self._only_lr:
            return {"log_return": E[J.E_LR].copy()}
        return {name: E[J.E_C0 + i].copy() for i, name in enumerate(REWARD_COMPONENTS)}

    def _full_infos(self) -> list[dict[str, Any]]:
        E, F, B = self._E, self.acc.arrays.F, self.acc.arrays.B
        cols: list[tuple[str, list]] = [("equity", F[J.F_EQUITY].tolist()), ("level", self.level.tolist())]
        if self._only_lr:
            cols.append(("reward_log_return", E[J.E_LR].tolist()))
        else:
            active = range(8) if self._detail else self._active
            cols += [("reward_" + REWARD_COMPONENTS[i], E[J.E_C0 + i].tolist()) for i in active]
        if self._detail:
            cols.append(("t", self.acc.arrays.IS[J.I_T].tolist()))
            cols += [(name, F[row].tolist()) for name, row in _LEDGER_ROWS]
            cols += [
                ("filled", F[J.F_FILLED].tolist()),
                ("unfilled", F[J.F_UNFILLED].tolist()),
                ("dropped", B[J.B_DROPPED].tolist()),
                ("liquidated", B[J.B_LIQ].tolist()),
                ("bankrupt", B[J.B_BANKRUPT].tolist()),
                ("drawdown", E[J.E_DD].tolist()),
            ]
        cols.append(("TimeLimit.truncated", (self._EI[J.EI_TRUNC] != 0).tolist()))
        keys = [k for k, _ in cols]
        return [dict(zip(keys, vals, strict=True)) for vals in zip(*(v for _, v in cols), strict=True)]

    # ------------------------------------------------------------------ read-outs
    @property
    def last_equity(self) -> np.ndarray:
        """Equity of every env after the last step (a copy)."""
        return self.acc.equity

    @property
    def last_components(self) -> dict[str, np.ndarray]:
        """The last step's reward components per env (only ``log_return`` when it is the only reward)."""
        return self._components()

    def _obs_row(self, obs, i: int):
        if self._flat:
            return obs[i].copy()
        return {k: v[i].copy() for k, v in obs.items()}

    # ------------------------------------------------------------------ masks
    def action_masks(self) -> np.ndarray:
        """(num_envs, n_actions) valid-action masks, as ``TradingEnv.action_masks`` per env."""
        n = self.num_envs
        last = self._E[J.E_LAST]
        if self._scheme == 2:
            return np.ones((n, 1), dtype=bool)
        if self._scheme == 0:
            s = self._table[1]
            return np.stack([np.ones(n, dtype=bool), last != s, last != -s, last != 0.0], axis=1)
        return np.abs(self._table)[None, :] <= self._E[J.E_MAXEXP][:, None] + 1e-12

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
