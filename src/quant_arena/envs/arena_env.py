"""`ArenaEnv`: several agents trade the same market at once; rewards are relative (zero-sum).

Multi-agent API (the shape of PettingZoo's *parallel* API, without the dependency)::

    from quant_arena.envs.arena_env import ArenaEnv

    arena = ArenaEnv(data, n_agents=3, window=30, action_scheme="discrete_targets")
    observations, infos = arena.reset(seed=0)           # dicts keyed by agent id
    while arena.agents:
        actions = {a: arena.action_space(a).sample() for a in arena.agents}
        observations, rewards, terminations, truncations, infos = arena.step(actions)

- ``possible_agents``: every agent id (``"agent_0"``, ... or ``agent_ids``); ``agents``: the
  agents still playing. An agent that is terminated or truncated gets its last observation,
  reward and info from that step and leaves ``agents``; the episode is over when ``agents`` is
  empty. ``step`` needs an action for every agent in ``agents`` (extra keys are an error).
- ``observation_space(agent)`` / ``action_space(agent)``: the same spaces as
  :class:`~quant_arena.envs.trading_env.TradingEnv` with the same parameters (every agent sees the
  market window and its own 6-number account state; actions are TradingEnv's schemes).
- Reward of agent ``i`` at a step: ``log_return_i - mean_j(log_return_j)`` over the agents that
  acted in that step, so the rewards of a step sum to zero (tested). ``info`` holds ``equity``,
  ``log_return``, ``mean_log_return`` and ``t``, plus ``termination`` / ``truncation`` reasons.
- Termination of one agent: liquidation, bankruptcy, or its own drawdown beyond
  ``max_drawdown``. Truncation of every agent: end of the data or ``max_episode_steps``; and
  when only one agent is left (``"last_agent_standing"``: nothing is left to compete against).

Market model: every agent is a **price-taker on the same bars**. Orders decided on bar ``t``'s
close fill at bar ``t + fill_delay``'s open through the ``sim/`` kernel
(one :class:`~quant_arena.sim.kernel.Account` per agent, or the bit-identical batched kernel
in ``pro_rata`` mode; one shared copy of the data), with each agent's own fee, spread, slippage and square-root impact computed against the
bar as if it traded alone: agents do **not** move the price for each other (no cross-impact),
so an agent's equity path is exactly the one a :class:`TradingEnv` would give it (tested).
``volume_sharing`` decides the participation cap: ``"independent"`` (default) caps every agent
against the whole bar's volume; ``"pro_rata"`` caps the *sum* of the agents' orders at
``participation_cap * volume`` and gives each agent a pro-rata share of it (its requested
quantity / the total requested; with ``cap_mode="reject"`` every competing order is rejected
when the total exceeds the cap).

:class:`ArenaSingleAgentEnv` is a ``gymnasium.Env`` around the arena: the learning agent
(the first agent) plays against fixed opponent policies (``"random"``, ``"flat"``, ``"long"``,
``"short"``, a callable ``(observation, rng) -> action``, or any object with SB3's
``predict(observation, deterministic=True)``, e.g. a frozen copy of the learner for self-play).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces
from gymnasium.utils import seeding

from quant_arena.envs._episodes import EpisodePlan
from quant_arena.envs.config import ArenaEnvConfig
from quant_arena.envs.trading_env import TradingEnv, as_market_data
from quant_arena.sim import Account, BatchAccounts, ExecutionConfig, MarketData

ARENA_ENV_ID = "quant_arena/Arena-v0"
NAN = math.nan
LOG_FLOOR = 1e-12
_BIG = float(np.finfo(np.float32).max)
#: Built-in opponent policies of :class:`ArenaSingleAgentEnv`.
OPPONENT_POLICIES: tuple[str, ...] = ("random", "flat", "long", "short")


_READ = ("equity", "units", "mark", "entry", "bars", "liquidated", "dropped", "bankrupt", "filled", "unfilled")


class _Book:
    """The agents' accounts behind one interface, read out as per-agent lists after every step.

    Independent volume: one scalar :class:`~quant_arena.sim.kernel.Account` per agent (for a
    handful of agents several times faster than the batched kernel). Pro-rata volume:
    :class:`~quant_arena.sim.batch.BatchAccounts`, whose per-account ``cap`` array is public.
    The two kernels give bit-identical numbers (tested in ``tests/sim``).
    """

    def __init__(self, data: MarketData, n: int, config: ExecutionConfig, equity: float, batch: bool) -> None:
        self.n = n
        self.batch = BatchAccounts(data, n, config, equity) if batch else None
        self.accounts = None if batch else [Account(data, config, equity) for _ in range(n)]
        self.t = 0

    def reset(self, start: int, equity: float) -> None:
        if self.batch is not None:
            self.batch.reset(np.arange(self.n), start, equity)
        else:
            for acc in self.accounts:
                acc.reset(start, equity)
        self._read()

    def step(self, targets: list[float]) -> None:
        if self.batch is not None:
            self.batch.step(np.asarray(targets, dtype=np.float64))
        else:
            for acc, tg in zip(self.accounts, targets, strict=True):
                acc.step(tg)
        self._read()

    def _read(self) -> None:
        if self.batch is not None:
            b = self.batch
            self.t = int(b.t[0])
            for name in _READ:
                setattr(self, name, getattr(b, name).tolist())
        else:
            accs = self.accounts
            self.t = accs[0].t
            for name in _READ:
                setattr(self, name, [getattr(a, name) for a in accs])


class ArenaEnv:
    """Several agents on one market, relative rewards (see the module docstring for the API).

    Args:
        data: a :class:`MarketData` (shared, never copied) or a tidy feature table.
        config: an :class:`ArenaEnvConfig` or a mapping; keyword arguments override fields.
        render_mode: ``None`` or ``"ansi"``.
    """

    metadata = {"name": "quant_arena_arena_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(
        self,
        data: MarketData | pd.DataFrame,
        config: ArenaEnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        cfg = ArenaEnvConfig.make(config, **overrides)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} not in {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.cfg = cfg
        self.data = data = as_market_data(data)
        tcfg = cfg.trading_config()
        proto = TradingEnv(data, tcfg)  # the single-agent spaces, so a policy moves between the two envs
        self._obs_space = proto.observation_space
        self._act_space = proto.action_space
        self.plan = EpisodePlan(data, tcfg)
        self.possible_agents: list[str] = list(cfg.ids)
        self.agents: list[str] = []
        n = len(self.possible_agents)
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        ex = cfg.execution
        self._max_exp = mx = ex.max_exposure
        self._im = ex.effective_initial_margin
        self._scheme = {"discrete": 0, "discrete_targets": 1, "continuous": 2}[cfg.action_scheme]
        if self._scheme == 0:
            s = float(cfg.position_size)
            table = [NAN, s, -s, 0.0]
        elif self._scheme == 1:
            table = [float(x) for x in cfg.target_exposures]
        else:
            table = []
        self._table = [min(mx, max(-mx, x)) if x == x else x for x in table]  # noqa: PLR0124 - NaN (hold) kept
        self._cap = np.inf if ex.participation_cap is None else ex.participation_cap
        self._pro_rata = cfg.volume_sharing == "pro_rata"
        self._book = _Book(data, n, ex, cfg.initial_equity, batch=self._pro_rata)
        #: the batched kernel in ``pro_rata`` mode (None otherwise)
        self.batch = self._book.batch
        w = cfg.window
        self._windows = np.lib.stride_tricks.sliding_window_view(data.features, (w, data.n_features))[:, 0]
        self._obs_kind = cfg.observation
        self._last_bar = len(data) - 1
        self._max_len = cfg.max_episode_steps or (1 << 62)
        self._max_dd = cfg.max_drawdown if cfg.max_drawdown is not None else math.inf
        self._inv_ts = 1.0 / cfg.time_scale
        self.np_random, _ = seeding.np_random(None)
        self._last = [0.0] * n
        self._peak = [cfg.initial_equity] * n
        self._steps = 0

    # ------------------------------------------------------------------ the API
    def observation_space(self, agent: str) -> spaces.Space:
        self._check_agent(agent)
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        self._check_agent(agent)
        return self._act_space

    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def max_num_agents(self) -> int:
        return len(self.possible_agents)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start every agent flat on the same bar; returns ``(observations, infos)`` keyed by agent."""
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        start = self.plan.start(0, self.np_random)
        if options and "start" in options:
            start = int(options["start"])
            if not self.plan.earliest <= start <= self._last_bar - 1:
                raise ValueError(f"options['start']={start} must lie in [{self.plan.earliest}, {self._last_bar - 1}]")
        n = len(self.possible_agents)
        eq = self.cfg.initial_equity
        self._book.reset(start, eq)
        self.agents = list(self.possible_agents)
        self._last = [0.0] * n
        self._peak = [eq] * n
        self._steps = 0
        obs = self._observe(list(range(n)))
        infos = {a: {"equity": eq, "t": start} for a in self.agents}
        return obs, infos

    def step(self, actions: Mapping[str, Any]):  # noqa: PLR0912, PLR0915 - one branch per outcome
        """Advance every live agent one bar; returns ``(obs, rewards, terminations, truncations, infos)``."""
        if not self.agents:
            raise RuntimeError("the episode is over (no agent left): call reset()")
        missing = [a for a in self.agents if a not in actions]
        extra = [a for a in actions if a not in self.agents]
        if missing or extra:
            raise ValueError(f"actions must be given for exactly the live agents {self.agents}: "
                             f"missing {missing}, not playing {extra}")
        book = self._book
        n = len(self.possible_agents)
        live = [self._index[a] for a in self.agents]
        targets = [NAN] * n
        for i in live:
            targets[i] = self._order(i, actions[self.possible_agents[i]])
        e0 = book.equity
        if self._pro_rata:
            self._share_volume(np.asarray(targets, dtype=np.float64))
        book.step(targets)
        if self._pro_rata:
            self.batch.cap[:] = self._cap
        e1 = book.equity
        self._steps += 1
        lr = {}
        for i in live:
            if book.liquidated[i]:
                self._last[i] = 0.0
            elif book.dropped[i]:
                self._last[i] = NAN
            ratio = e1[i] / max(e0[i], 1e-9 * self.cfg.initial_equity)  # finite from a bankrupt account
            lr[i] = math.log(ratio if ratio > LOG_FLOOR else LOG_FLOOR)
        mean = sum(lr.values()) / len(lr)
        t = book.t
        end = t >= self._last_bar or self._steps >= self._max_len
        rewards, terms, truncs, infos = {}, {}, {}, {}
        peak = self._peak
        for i in live:
            a = self.possible_agents[i]
            e = e1[i]
            peak[i] = max(peak[i], e)
            rewards[a] = lr[i] - mean
            info = {"equity": e, "log_return": lr[i], "mean_log_return": mean, "t": t}
            term = True
            if book.bankrupt[i]:
                info["termination"] = "bankruptcy"
            elif book.liquidated[i]:
                info["termination"] = "liquidation"
            elif 1.0 - e / peak[i] >= self._max_dd:
                info["termination"] = "max_drawdown"
            else:
                term = False
            terms[a] = term
            truncs[a] = not term and end
            if truncs[a]:
                info["truncation"] = "end_of_data" if t >= self._last_bar else "max_episode_steps"
            infos[a] = info
        remaining = [i for i in live if not (terms[self.possible_agents[i]] or truncs[self.possible_agents[i]])]
        if len(remaining) == 1:  # nothing left to compete against
            a = self.possible_agents[remaining[0]]
            truncs[a] = True
            infos[a]["truncation"] = "last_agent_standing"
            remaining = []
        obs = self._observe(live)
        self.agents = [self.possible_agents[i] for i in remaining]
        return obs, rewards, terms, truncs, infos

    def action_masks(self, agent: str) -> np.ndarray:
        """``agent``'s valid actions, as ``TradingEnv.action_masks`` (for MaskablePPO)."""
        self._check_agent(agent)
        if self._scheme == 2:
            return np.ones(1, dtype=bool)
        last = self._last[self._index[agent]]
        if self._scheme == 0:
            s = self._table[1]
            return np.array([True, last != s, last != -s, last != 0.0], dtype=bool)
        raw = self.cfg.target_exposures
        return np.array([abs(x) <= self._max_exp + 1e-12 for x in raw], dtype=bool)

    def policy(self, spec: Any) -> Policy:
        """``spec`` as a player ``(observation, rng) -> action`` of this arena: a name of
        :data:`OPPONENT_POLICIES` (in this arena's action scheme), a callable, or an object with
        ``predict`` (called deterministically)."""
        return _as_policy(spec, self._act_space, self._scheme, self._table)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        b = self._book
        parts = [f"{a}: units={b.units[i]:.6g} equity={b.equity[i]:.6g}" for i, a in enumerate(self.possible_agents)]
        return f"t={b.t} close={b.mark[0]:.6g} | " + " | ".join(parts)

    # ------------------------------------------------------------------ read-outs (per possible agent)
    @property
    def t(self) -> int:
        """The bar every agent sits on (after its close)."""
        return self._book.t

    @property
    def equity(self) -> np.ndarray:
        return np.array(self._book.equity)

    @property
    def units(self) -> np.ndarray:
        return np.array(self._book.units)

    @property
    def filled(self) -> np.ndarray:
        """Units filled in the last step, per agent."""
        return np.array(self._book.filled)

    @property
    def unfilled(self) -> np.ndarray:
        """Units the volume rules left unfilled in the last step, per agent."""
        return np.array(self._book.unfilled)

    def close(self) -> None:
        """Nothing to release (kept for the PettingZoo-like API)."""

    # ------------------------------------------------------------------ internals
    def _check_agent(self, agent: str) -> None:
        if agent not in self._index:
            raise KeyError(f"unknown agent {agent!r}; possible agents: {self.possible_agents}")

    def _order(self, i: int, action: Any) -> float:
        """TradingEnv's action -> order rule for agent ``i`` (NaN: no new order)."""
        scheme = self._scheme
        if scheme == 2:
            a = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
            tg = (a if -1.0 <= a <= 1.0 else (1.0 if a > 0.0 else -1.0)) * self._max_exp
        else:
            tg = self._table[int(action)]
        last = self._last[i]
        if tg == tg:  # noqa: PLR0124 - NaN test (hold)
            if scheme != 2:
                if tg != last:
                    self._last[i] = tg
                    return tg
            elif last != last or abs(tg - last) > self.cfg.rebalance_tolerance:  # noqa: PLR0124
                self._last[i] = tg
                return tg
        return NAN

    def _share_volume(self, targets: np.ndarray) -> None:
        """Pro-rata participation: scale each competing order's cap so the sum fits the bar's cap.

        Reproduces the kernel's own order arithmetic (due order, equity at the open, gap and
        open-liquidation rules) to know each agent's requested quantity before the fill.
        """
        b = self.batch
        d = b.delay
        due = targets if d == 1 else b.queue[np.arange(b.n), (b.k + 1) % d]
        t = b.t + 1
        with np.errstate(divide="ignore", invalid="ignore"):
            o = self.data.open[t]
            eq_o = b.cash + b.units * o
            open_liq = (o <= b.liq_lo) | (o >= b.liq_hi)
            gap = ~b.allow_gap & (self.data.gap_cum[t] != self.data.gap_cum[np.maximum(t - d, 0)])
            eligible = ~np.isnan(due) & ~open_liq & ~gap & (eq_o > 0.0)
            q = np.where(eligible, due * eq_o / o - b.units, 0.0)
        aq = np.abs(q)
        total = float(aq.sum())
        room = self._cap * float(self.data.volume[t[0]])
        if total > room:
            b.cap[:] = np.where(aq > 0.0, self._cap * aq / total, self._cap)

    def _observe(self, idx: Sequence[int]) -> dict[str, Any]:
        """Observations of agents ``idx``: the shared window (one copy each) and own account state.

        The account numbers are TradingEnv's (same expressions, same float32 rounding).
        """
        b = self._book
        window = self._windows[b.t - self.cfg.window + 1]
        start_eq = self.cfg.initial_equity
        floor = 1e-9 * start_eq
        kind = self._obs_kind
        out: dict[str, Any] = {}
        for i in idx:
            e = b.equity[i]
            es = e if e > floor else floor
            u = b.units[i]
            if u != 0.0:
                c = b.mark[i]
                uc = u * c
                entry = b.entry[i]
                row = [uc / es, u * (c - entry) / es, e / start_eq - 1.0, b.bars[i] * self._inv_ts,
                       entry / c - 1.0, abs(uc) * self._im / es]
            else:
                row = [0.0, 0.0, e / start_eq - 1.0, 0.0, 0.0, 0.0]
            acc = np.array([x if -_BIG <= x <= _BIG else (_BIG if x > 0.0 else -_BIG) for x in row], dtype=np.float32)
            a = self.possible_agents[i]
            if kind == "flat":
                out[a] = np.concatenate([window.reshape(-1), acc])
            elif kind == "dict_1d":
                out[a] = {"market": window.copy().reshape(-1), "account": acc}
            else:
                out[a] = {"market": window.copy(), "account": acc}
        return out


# ---------------------------------------------------------------------- single-agent wrapper
Policy = Callable[[Any, np.random.Generator], Any]


def _builtin_policy(name: str, space: spaces.Space, scheme: int, table: list[float]) -> Policy:
    if name == "random":
        if isinstance(space, spaces.Discrete):
            return lambda obs, rng: int(rng.integers(space.n))
        return lambda obs, rng: rng.uniform(-1.0, 1.0, size=space.shape).astype(np.float32)
    want = {"flat": 0.0, "long": 1.0, "short": -1.0}[name]
    if scheme == 2:
        action = np.array([want], dtype=np.float32)
        return lambda obs, rng: action.copy()
    if scheme == 0:
        index = {"flat": 3, "long": 1, "short": 2}[name]
    elif want == 0.0:
        index = int(np.argmin(np.abs(table)))
    else:
        index = int(np.argmax(table)) if want > 0 else int(np.argmin(table))
    return lambda obs, rng: index


def _as_policy(spec: Any, space: spaces.Space, scheme: int, table: list[float]) -> Policy:
    if isinstance(spec, str):
        if spec not in OPPONENT_POLICIES:
            raise ValueError(f"opponents: unknown policy {spec!r}; built-in policies: {list(OPPONENT_POLICIES)}")
        return _builtin_policy(spec, space, scheme, table)
    if hasattr(spec, "predict"):
        return lambda obs, rng: spec.predict(obs, deterministic=True)[0]
    if callable(spec):
        return spec
    raise TypeError(f"opponents: expected a policy name, a callable (obs, rng) -> action or an object with predict(), got {type(spec).__name__}")


class ArenaSingleAgentEnv(gym.Env):
    """A ``gymnasium.Env``: the arena's first agent learns, the others follow fixed policies.

    Args:
        data: a :class:`MarketData` or a tidy feature table.
        opponents: one policy per opponent (names in :data:`OPPONENT_POLICIES`, callables
            ``(observation, rng) -> action`` or objects with ``predict``); the arena has
            ``1 + len(opponents)`` agents.
        config: an :class:`ArenaEnvConfig` or a mapping (without ``n_agents``/``agent_ids``);
            keyword arguments override fields.

    The reward is the learner's log return minus the mean of all live agents' log returns; the
    episode ends when the learner is terminated or truncated (also when every opponent is out).
    ``info`` is the learner's arena info.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        data: MarketData | pd.DataFrame,
        opponents: Sequence[Any] = ("random",),
        config: ArenaEnvConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if isinstance(opponents, str) or not isinstance(opponents, Sequence) or len(opponents) < 1:
            raise ValueError(f"opponents must be a non-empty list of policies, got {opponents!r}")
        given = set(overrides)
        if isinstance(config, ArenaEnvConfig):
            given |= config.model_fields_set
        elif config is not None:
            given |= set(config)
        if given & {"n_agents", "agent_ids"}:
            raise ValueError("n_agents / agent_ids: the single-agent arena has the learner plus one agent per entry of opponents")
        base = ArenaEnvConfig.make(config, **overrides).model_dump()
        base["n_agents"] = 1 + len(opponents)
        base["agent_ids"] = ("learner", *(f"opponent_{i}" for i in range(len(opponents))))
        self.arena = ArenaEnv(data, ArenaEnvConfig.model_validate(base), render_mode=render_mode)
        self.render_mode = render_mode
        self.learner = self.arena.possible_agents[0]
        self.observation_space = self.arena.observation_space(self.learner)
        self.action_space = self.arena.action_space(self.learner)
        space = self.arena.action_space(self.learner)
        self._policies = {
            a: _as_policy(p, space, self.arena._scheme, self.arena._table)
            for a, p in zip(self.arena.possible_agents[1:], opponents, strict=True)
        }
        self._obs: dict[str, Any] = {}

    def set_opponents(self, opponents: Sequence[Any]) -> None:
        """Replace the opponents' policies (one per opponent, as ``opponents`` of the constructor),
        e.g. at an episode start by a self-play league; takes effect at the next step."""
        if isinstance(opponents, str) or len(opponents) != len(self._policies):
            raise ValueError(f"set_opponents: expected {len(self._policies)} policies, got {opponents!r}")
        self._policies = {a: self.arena.policy(p) for a, p in zip(self.arena.possible_agents[1:], opponents, strict=True)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is None:  # continue the arena's stream, drawn from ours so one seed fixes everything
            seed = int(self.np_random.integers(2**31 - 1))
        obs, infos = self.arena.reset(seed=seed, options=options)
        self._obs = obs
        return obs[self.learner], infos[self.learner]

    def step(self, action):
        arena = self.arena
        actions = {self.learner: action}
        for a in arena.agents:
            if a != self.learner:
                actions[a] = self._policies[a](self._obs[a], self.np_random)
        obs, rewards, terms, truncs, infos = arena.step(actions)
        self._obs = obs
        me = self.learner
        done = terms[me] or truncs[me]
        if done:
            arena.agents = []  # the learner's episode is over; the arena needs a reset
        return obs[me], float(rewards[me]), bool(terms[me]), bool(truncs[me]), infos[me]

    def action_masks(self) -> np.ndarray:
        """The learner's valid actions (for MaskablePPO)."""
        return self.arena.action_masks(self.learner)

    def render(self):
        return self.arena.render()


if ARENA_ENV_ID not in gym.registry:
    gym.register(id=ARENA_ENV_ID, entry_point="quant_arena.envs.arena_env:ArenaSingleAgentEnv")
