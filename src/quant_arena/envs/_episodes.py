"""Episode starts and lengths, shared by every env (TradingEnv, the vector env, PortfolioEnv, ArenaEnv: all draw alike)."""

from __future__ import annotations

import numpy as np

from quant_arena.envs.config import EnvConfig
from quant_arena.sim import ExecutionConfig, MarketData, PortfolioData


class EpisodePlan:
    """Where episodes may start and how long they last, per curriculum level.

    The earliest start is ``warmup + window - 1`` so the first observation window holds no
    warm-up rows; an episode needs at least one step, so the latest start is ``T - 2``.
    Curriculum levels come from ``cfg.curriculum`` when the config has one (TradingEnv's).
    """

    def __init__(self, data: MarketData | PortfolioData, cfg: EnvConfig) -> None:
        n = len(data)
        self.n_bars = n
        self.earliest = data.warmup + cfg.window - 1
        if self.earliest > n - 2:
            raise ValueError(
                f"window={cfg.window} is too long for the data: {n} bars"
                + (f" ({data.warmup} warm-up bars with non-finite features)" if data.warmup else "")
                + f" leave no room for one step (need window <= {n - 1 - data.warmup})"
            )
        self.cfg = cfg
        self.data = data
        if cfg.start == "fixed" and cfg.start_index is not None:
            if not self.earliest <= cfg.start_index <= n - 2:
                raise ValueError(
                    f"start_index={cfg.start_index} must lie in [{self.earliest}, {n - 2}] "
                    f"(window {cfg.window}, warm-up {data.warmup}, {n} bars)"
                )
        cur = getattr(cfg, "curriculum", None)
        self.levels = list(cur.levels) if cur is not None else [None]
        self._cands: dict[int, np.ndarray | None] = {}
        self._bounds: dict[int, tuple[int, int]] = {}
        self.exec_configs: list[ExecutionConfig] = []
        for level, lv in enumerate(self.levels):
            ex = cfg.execution
            if lv is not None:
                ex = ex.scaled(lv.fee_mult, lv.slippage_mult, lv.max_leverage)
            self.exec_configs.append(ex)
            self._prepare(level)

    def max_steps(self, level: int) -> int | None:
        lv = self.levels[level]
        if lv is not None and lv.episode_length is not None:
            return lv.episode_length
        return self.cfg.max_episode_steps

    def _prepare(self, level: int) -> None:
        n = self.n_bars
        length = self.max_steps(level)
        lo = self.earliest
        hi = n - 1 - length if length is not None and n - 1 - length >= lo else n - 2
        self._bounds[level] = (lo, hi)
        lv = self.levels[level]
        if lv is None or lv.max_vol_quantile >= 1.0:
            self._cands[level] = None
            return
        w = length or self.cfg.curriculum.vol_window  # type: ignore[union-attr]
        lr = self.data.log_returns
        c1 = np.concatenate(([0.0], np.cumsum(lr)))
        c2 = np.concatenate(([0.0], np.cumsum(lr * lr)))
        s = np.arange(lo, hi + 1)
        end = np.minimum(s + w, n - 1)  # returns of bars s+1..end
        cnt = np.maximum(end - s, 1)
        mean = (c1[end + 1] - c1[s + 1]) / cnt
        var = np.maximum((c2[end + 1] - c2[s + 1]) / cnt - mean * mean, 0.0)
        cut = np.quantile(var, lv.max_vol_quantile)
        cands = s[var <= cut]
        self._cands[level] = cands if len(cands) else s

    def start(self, level: int, rng: np.random.Generator) -> int:
        """The start bar of a new episode (one draw from ``rng`` in random mode)."""
        if self.cfg.start == "fixed":
            return self.cfg.start_index if self.cfg.start_index is not None else self.earliest
        cands = self._cands[level]
        if cands is not None:
            return int(cands[rng.integers(len(cands))])
        lo, hi = self._bounds[level]
        return int(rng.integers(lo, hi + 1))
