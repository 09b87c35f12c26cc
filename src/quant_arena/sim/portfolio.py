"""Several assets, one cash balance: the portfolio form of the execution kernel.

:class:`PortfolioData` stacks several :class:`~quant_arena.sim.market_data.MarketData` that share
one timeline into ``(T, A)`` price arrays (and one ``(T, sum F)`` feature matrix, asset-major).
:class:`PortfolioAccount` trades them from a single cash balance with the rules and the cost
expressions of :class:`~quant_arena.sim.kernel.Account`, evaluated per asset:

1. **Open.** If the portfolio's equity at the open is at or below maintenance margin
   (``equity <= maintenance_margin * sum |units| * open``, the market gapped through the
   liquidation level) every position is liquidated at the open and due orders are dropped.
   Otherwise each asset's due order (decided ``fill_delay`` bars ago) fills at this open: the
   quantity is ``target_weight * portfolio_equity_at_open / open - units``; participation cap,
   square-root impact, fee, half spread and slippage are computed per asset exactly as in
   ``Account``; a gap between decision and fill drops that asset's order only (unless
   ``allow_fill_across_gap``); a non-positive equity at the open drops every order.
2. **Intrabar.** The bar's path across assets is unknown, so the kernel assumes the worst case:
   every long reaches its low and every short its high at the same moment, along a straight line
   from the open. The portfolio is liquidated at the first point of that line where equity falls
   to maintenance margin (closed form; the open when already there). With one asset this is
   exactly ``Account``'s liquidation price (tested).
3. **Close.** Mark to the close; funding, short borrow and swap per asset; borrow on a negative
   cash balance (leverage) once for the portfolio.

Not yet here (unlike :class:`~quant_arena.sim.kernel.Account`): the perpetual-futures mark
prices. Funding is valued at the last close and liquidation triggers on last-trade prices even
when the assets' data carries ``mark_*`` columns.

The per-step ledger (all in equity units) is exact::

    pnl + fee + spread + impact + funding + swap + liquidation_fee == equity_after - equity_before

with ``equity = cash + sum(units * close)``; :meth:`PortfolioAccount.ledger_by_asset` splits it by
asset (plus ``funding_cash``, the borrow on negative cash). Targets are weights of equity
(``position value / equity``); the weight of cash is ``1 - sum(weights)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_arena.market.errors import DataError
from quant_arena.sim.config import ExecutionConfig
from quant_arena.sim.kernel import LEDGER_FIELDS
from quant_arena.sim.market_data import MarketData

__all__ = ["PortfolioAccount", "PortfolioData"]

NAN = math.nan
INF = math.inf


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(a)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class PortfolioData:
    """A assets on one timeline of T bars, stacked once into read-only arrays.

    Attributes:
        assets: the per-asset :class:`MarketData` (kept for their funding/spread series).
        open, high, low, close, volume: float64 ``(T, A)``.
        gap_cum: int64 ``(T, A)``, cumulative count of each asset's ``gap_before``.
        log_returns: float64 ``(T, A)``.
        features: float32 ``(T, sum F_a)``: asset 0's feature columns, then asset 1's, ...
        feature_names: ``"<label>:<feature>"`` for every column of ``features``.
        labels: one label per asset (its symbol, or ``asset<i>`` when symbols are missing or repeat).
        warmup: the largest warm-up of the assets.
    """

    assets: tuple[MarketData, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    gap_cum: np.ndarray
    log_returns: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    labels: tuple[str, ...]
    warmup: int
    bars_per_year: float
    timestamps: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_assets(cls, assets: Sequence[MarketData], source: str | None = None) -> PortfolioData:
        """Stack assets sharing one timeline (same length; identical timestamps when they have them)."""
        assets = tuple(assets)
        if not assets:
            raise DataError("a portfolio needs at least one asset", file=source, rule="n_assets")
        for i, a in enumerate(assets):
            if not isinstance(a, MarketData):
                raise TypeError(f"assets[{i}] must be a MarketData, got {type(a).__name__}")
        n = len(assets[0])
        for i, a in enumerate(assets[1:], start=1):
            if len(a) != n:
                raise DataError(f"asset {i} has {len(a)} bars, asset 0 has {n}: assets must share one timeline",
                                file=source, rule="aligned_timeline")
        stamps = [a.timestamps for a in assets]
        if any(s is not None for s in stamps):
            if any(s is None for s in stamps):
                raise DataError("timestamps on some assets only: cannot check that they share one timeline",
                                file=source, rule="aligned_timeline")
            ref = np.asarray(stamps[0])
            for i, s in enumerate(stamps[1:], start=1):
                diff = np.flatnonzero(np.asarray(s) != ref)
                if len(diff):
                    raise DataError(f"asset {i}'s timestamps differ from asset 0's (first at row {int(diff[0])})",
                                    file=source, row=int(diff[0]), rule="aligned_timeline")
        syms = [a.symbol for a in assets]
        unique = all(syms) and len(set(syms)) == len(syms)
        labels = tuple(syms) if unique else tuple(f"asset{i}" for i in range(len(assets)))

        def stack(name: str, dtype: type) -> np.ndarray:
            return _frozen(np.stack([getattr(a, name) for a in assets], axis=1).astype(dtype, copy=False))

        feats = _frozen(np.concatenate([a.features for a in assets], axis=1))
        names = tuple(f"{lab}:{f}" for lab, a in zip(labels, assets, strict=True) for f in a.feature_names)
        return cls(
            assets=assets,
            open=stack("open", np.float64),
            high=stack("high", np.float64),
            low=stack("low", np.float64),
            close=stack("close", np.float64),
            volume=stack("volume", np.float64),
            gap_cum=stack("gap_cum", np.int64),
            log_returns=stack("log_returns", np.float64),
            features=feats,
            feature_names=names,
            labels=labels,
            warmup=max(a.warmup for a in assets),
            bars_per_year=assets[0].bars_per_year,
            timestamps=stamps[0],
        )

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        symbols: Sequence[str] | None = None,
        feature_columns: Sequence[str] | None = None,
        timeframe: str | None = None,
        source: str | None = None,
    ) -> PortfolioData:
        """One asset per symbol of a tidy table (``symbols`` defaults to all, in order of appearance)."""
        if "symbol" not in df.columns:
            raise DataError("a portfolio table needs a 'symbol' column", file=source, rule="missing_columns")
        syms = list(pd.unique(df["symbol"])) if symbols is None else list(symbols)
        assets = [
            MarketData.from_frame(df, feature_columns=feature_columns, symbol=s, timeframe=timeframe, source=source)
            for s in syms
        ]
        return cls.from_assets(assets, source=source)

    def __len__(self) -> int:
        return self.close.shape[0]

    @property
    def n_assets(self) -> int:
        return self.close.shape[1]

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def funding_matrix(self, constant: float, use_series: bool) -> np.ndarray | None:
        """``(T, A)`` per-bar funding (the constant where an asset has no series), None if no asset has one."""
        return self._matrix(constant, [a.funding_per_bar(constant, use_series) for a in self.assets])

    def spread_matrix(self, constant: float, use_series: bool) -> np.ndarray | None:
        """``(T, A)`` quoted spread in bps (the constant where an asset has no series), or None."""
        return self._matrix(constant, [a.spread_per_bar(constant, use_series) for a in self.assets])

    def _matrix(self, constant: float, cols: list[np.ndarray | None]) -> np.ndarray | None:
        if all(c is None for c in cols):
            return None
        n = len(self)
        return _frozen(np.stack([np.full(n, constant) if c is None else c for c in cols], axis=1))


class PortfolioAccount:
    """One account holding A assets from one cash balance (see the module docstring).

    Args:
        data: the stacked assets.
        config: execution costs and margin rules (the same for every asset).
        initial_equity: equity at :meth:`reset`.
        record: keep one row per step in :attr:`history` (see :meth:`history_frame`).

    State: ``t``, ``cash``, ``equity`` (floats) and per-asset arrays ``units``, ``mark`` (last
    close), ``entry`` (average entry price), ``bars`` (bars in position). After :meth:`step`:
    ``pnl, fee, spread, impact, funding, swap, liquidation_fee`` are the step's ledger totals
    (floats); ``filled``, ``unfilled`` (units), ``dropped``, ``closed`` and ``closed_return`` are
    per-asset arrays; ``liquidated`` and ``bankrupt`` are flags.

    The step is scalar float math over the assets (Python floats, like
    :class:`~quant_arena.sim.kernel.Account`): for a handful of assets that is several times
    faster than numpy on arrays of length A. The per-asset expressions are the scalar kernel's.
    """

    def __init__(
        self,
        data: PortfolioData,
        config: ExecutionConfig | None = None,
        initial_equity: float = 1.0,
        record: bool = False,
    ) -> None:
        if not (math.isfinite(initial_equity) and initial_equity > 0):
            raise ValueError(f"initial_equity={initial_equity!r} must be positive")
        self.data = data
        self.n_assets = data.n_assets
        self.initial_equity = float(initial_equity)
        self._record = record
        # flat read-only views: bar t, asset i is element t * A + i
        self._o = memoryview(data.open.reshape(-1))
        self._h = memoryview(data.high.reshape(-1))
        self._l = memoryview(data.low.reshape(-1))
        self._c = memoryview(data.close.reshape(-1))
        self._v = memoryview(data.volume.reshape(-1))
        self._gapc = memoryview(data.gap_cum.reshape(-1))
        self.configure(config or ExecutionConfig())
        self.reset(0)

    def configure(self, config: ExecutionConfig) -> None:
        """Switch to another execution config (takes effect from the next step)."""
        self.config = config
        k = config.kernel_params()
        for name, value in zip(k._fields, k, strict=True):  # _fee, _spm, ... _allow_gap: read by the step
            setattr(self, "_" + name, value)
        self._delay = config.fill_delay
        sp = self.data.spread_matrix(k.spc, k.use_spread_series)
        self._sp = None if sp is None else memoryview(sp.reshape(-1))
        fr = self.data.funding_matrix(k.frc, k.use_funding_series)
        self._fr = None if fr is None else memoryview(fr.reshape(-1))
        self.max_exposure = k.max_exposure

    def reset(self, t: int, equity: float | None = None) -> None:
        """Start flat (all cash) with ``equity`` (default ``initial_equity``) after bar ``t``'s close."""
        n = len(self.data)
        if not 0 <= t < n:
            raise ValueError(f"start bar t={t} outside the data (0..{n - 1})")
        a = self.n_assets
        eq = self.initial_equity if equity is None else float(equity)
        self.t = int(t)
        self.cash = eq
        self.equity = eq
        self._u = [0.0] * a
        self._m = [self._c[t * a + i] for i in range(a)]
        self._entry = [0.0] * a
        self._bars = [0] * a
        self._queue = [[NAN] * a for _ in range(self._delay)]
        self._k = 0
        self._quiet()
        self.n_trades = self.n_unfillable = self.n_dropped = 0
        self.history: list[tuple] | None = [] if self._record else None

    def _quiet(self) -> None:
        a = self.n_assets
        z = [0.0] * a
        self.pnl = self.fee = self.spread = self.impact = 0.0
        self.funding = self.swap = self.liquidation_fee = self.funding_cash = 0.0
        self._out = {name: z for name in (*LEDGER_FIELDS, "filled", "unfilled", "closed_return")}
        self._dropped = self._closed = (False,) * a
        self.liquidated = self.bankrupt = False

    # ------------------------------------------------------------------ the step
    def step(self, targets: np.ndarray | Sequence[float] | None = None) -> None:
        """Record orders for target weights (NaN or None: no order) and advance one bar."""
        a = self.n_assets
        if targets is None:
            tg = [NAN] * a
        else:
            tg = targets.tolist() if isinstance(targets, np.ndarray) else [float(x) for x in targets]
            if len(tg) != a or (isinstance(targets, np.ndarray) and targets.ndim != 1):
                raise ValueError(f"targets must have shape ({a},), got {np.shape(targets)}")
        d = self._delay
        if d == 1:
            due = tg
        else:
            k = self._k
            self._queue[k % d] = tg
            due = self._queue[(k + 1) % d]
            self._k = k + 1
        self._step(due)

    def _step(self, due: list[float]) -> None:  # noqa: PLR0912, PLR0915 - one flat step, mirrors Account.step
        a = self.n_assets
        t = self.t + 1
        base = t * a
        u = self._u
        has_due = [x == x for x in due]  # noqa: PLR0124 - NaN test
        any_due = any(has_due)
        if not any_due and not any(u) and self.cash > 0.0:  # flat, solvent, nothing due: only the clock moves
            self.t = t
            self._m = self._c[base : base + a].tolist()
            self._quiet()
            if self._record:
                self.history.append((t, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, self.equity, self.cash, tuple(u), False))
            return
        o = self._o[base : base + a].tolist()
        c = self._c[base : base + a].tolist()
        ua = list(u)
        u = list(u)
        cash = self.cash
        m = self._m
        entry = list(self._entry)
        bars = list(self._bars)
        fee = [0.0] * a
        spr = [0.0] * a
        imp = [0.0] * a
        lfee = [0.0] * a
        filled = [0.0] * a
        unfilled = [0.0] * a
        closed_ret = [0.0] * a
        dropped = [False] * a
        closed = [False] * a
        liq = False
        mm = self._mm
        rng = range(a)
        # 1. the open: gapped through the maintenance level, else the due orders
        eq_o = cash
        gross = 0.0
        for i in rng:
            if u[i] != 0.0:
                eq_o = eq_o + u[i] * o[i]
                gross = gross + abs(u[i]) * o[i]
        if gross > 0.0 and eq_o <= mm * gross:
            for i in rng:
                ui = u[i]
                if ui != 0.0:
                    oi = o[i]
                    cash = cash + ui * oi
                    lf = -(self._lfee * abs(ui) * oi)
                    cash = cash + lf
                    lfee[i] = lf
                    closed[i] = True
                    closed_ret[i] = (oi / entry[i] - 1.0) if ui > 0.0 else (1.0 - oi / entry[i])
                    u[i] = 0.0
                    entry[i] = 0.0
                    bars[i] = 0
            liq = True
            dropped = has_due
        elif any_due:
            if eq_o > 0.0:
                d = self._delay
                gapc = self._gapc
                for i in rng:
                    if not has_due[i]:
                        continue
                    if not self._allow_gap and gapc[base + i] != gapc[base - d * a + i]:
                        dropped[i] = True
                        continue
                    ui = u[i]
                    oi = o[i]
                    q = due[i] * eq_o / oi - ui
                    if q == 0.0:
                        continue
                    aq = abs(q)
                    vol = self._v[base + i]
                    lim = self._cap * vol
                    unf = 0.0
                    if aq > lim:
                        if self._cap_reject:
                            unf = aq
                            aq = 0.0
                        else:
                            unf = aq - lim
                            aq = lim
                    imp_frac = 0.0
                    if self._impact > 0.0 and aq > 0.0:
                        if vol > 0.0:
                            imp_frac = self._impact * math.sqrt(aq / vol)
                        else:
                            unf = unf + aq
                            aq = 0.0
                    if aq > 0.0:
                        q = aq if q > 0.0 else -aq
                        notional = aq * oi
                        sp = self._sp[base + i] if self._sp is not None else self._spc
                        s_i = -(notional * (sp * self._spm + self._slip))
                        m_i = -(notional * imp_frac)
                        f_i = -(notional * self._fee)
                        cash = cash - q * oi + s_i + m_i + f_i
                        spr[i] = s_i
                        imp[i] = m_i
                        fee[i] = f_i
                        filled[i] = q
                        un = ui + q
                        if ui == 0.0:
                            entry[i] = oi
                            bars[i] = 0
                        elif un == 0.0 or (un > 0.0) != (ui > 0.0):
                            closed[i] = True
                            closed_ret[i] = (oi / entry[i] - 1.0) if ui > 0.0 else (1.0 - oi / entry[i])
                            entry[i] = oi if un != 0.0 else 0.0
                            bars[i] = 0
                        elif abs(un) > abs(ui):
                            entry[i] = (ui * entry[i] + q * oi) / un
                        u[i] = un
                    else:
                        dropped[i] = True
                    if unf > 0.0:
                        unfilled[i] = unf
                        self.n_unfillable += 1
            else:
                dropped = has_due
        ub = list(u)
        # 2. intrabar: the worst case for every position at once, on a line from the open
        x = c
        if any(u):
            lo = self._l[base : base + a].tolist()
            hi = self._h[base : base + a].tolist()
            eq_b = cash
            g_b = 0.0
            de = 0.0
            dg = 0.0
            move = [0.0] * a
            for i in rng:
                ui = u[i]
                if ui != 0.0:
                    mv = (lo[i] if ui > 0.0 else hi[i]) - o[i]
                    move[i] = mv
                    eq_b = eq_b + ui * o[i]
                    g_b = g_b + abs(ui) * o[i]
                    de = de + ui * mv
                    dg = dg + abs(ui) * mv
            slack = eq_b - mm * g_b
            slope = de - mm * dg
            lam = -1.0
            if slack <= 0.0:
                lam = 0.0
            elif slack + slope <= 0.0:
                lam = -slack / slope
            if lam >= 0.0:
                x = list(c)
                for i in rng:
                    ui = u[i]
                    if ui != 0.0:
                        xi = o[i] + lam * move[i] if lam > 0.0 else o[i]
                        x[i] = xi
                        cash = cash + ui * xi
                        lf = -(self._lfee * abs(ui) * xi)
                        cash = cash + lf
                        lfee[i] = lf
                        closed[i] = True
                        closed_ret[i] = (xi / entry[i] - 1.0) if ui > 0.0 else (1.0 - xi / entry[i])
                        u[i] = 0.0
                        entry[i] = 0.0
                        bars[i] = 0
                liq = True
        # 3. the close: mark, funding, borrow, swap
        fund = [0.0] * a
        swp = [0.0] * a
        pnl = [0.0] * a
        fund_sum = swp_sum = pnl_sum = value_sum = 0.0
        fr_v = self._fr
        for i in rng:
            ui = u[i]
            ci = c[i]
            value = ui * ci
            if value != 0.0:
                fr = fr_v[base + i] if fr_v is not None else self._frc
                f_i = -(fr * value) - self._bshort * (-value if value < 0.0 else 0.0)
                s_i = self._swl * value if value > 0.0 else self._sws * -value
                fund[i] = f_i
                swp[i] = s_i
                fund_sum = fund_sum + f_i
                swp_sum = swp_sum + s_i
                value_sum = value_sum + value
            p_i = ua[i] * (o[i] - m[i]) + ub[i] * (x[i] - o[i]) + ui * (ci - x[i])
            pnl[i] = p_i
            pnl_sum = pnl_sum + p_i
        fund_cash = -(self._blev * (-cash if cash < 0.0 else 0.0))
        total_fund = fund_sum + fund_cash
        cash = cash + total_fund + swp_sum
        equity = cash + value_sum
        self.t = t
        self.cash = cash
        self._u = u
        self._m = c
        self._entry = entry
        self._bars = [b + 1 if u[i] != 0.0 else 0 for i, b in enumerate(bars)]
        self.equity = equity
        self.pnl = pnl_sum
        self.fee = sum(fee)
        self.spread = sum(spr)
        self.impact = sum(imp)
        self.funding = total_fund
        self.funding_cash = fund_cash
        self.swap = swp_sum
        self.liquidation_fee = sum(lfee)
        self._out = {"pnl": pnl, "fee": fee, "spread": spr, "impact": imp, "funding": fund, "swap": swp,
                     "liquidation_fee": lfee, "filled": filled, "unfilled": unfilled, "closed_return": closed_ret}
        self._dropped = dropped
        self._closed = closed
        self.liquidated = liq
        self.bankrupt = equity <= 0.0
        self.n_trades += sum(1 for q in filled if q != 0.0)
        self.n_dropped += sum(dropped)
        if self._record:
            self.history.append((t, pnl_sum, self.fee, self.spread, self.impact, total_fund, swp_sum,
                                 self.liquidation_fee, equity, cash, tuple(u), liq))

    # ------------------------------------------------------------------ read-outs (arrays of length A)
    def positions(self) -> tuple[list[float], list[float], list[float]]:
        """``(units, mark, entry)`` as the kernel's own lists (no copy: read, do not mutate)."""
        return self._u, self._m, self._entry

    def step_flags(self) -> tuple[list[float], list[float], list[bool]]:
        """``(filled, closed_return, closed)`` of the last step as the kernel's lists (no copy)."""
        return self._out["filled"], self._out["closed_return"], self._closed

    @property
    def units(self) -> np.ndarray:
        return np.array(self._u)

    @property
    def mark(self) -> np.ndarray:
        return np.array(self._m)

    @property
    def entry(self) -> np.ndarray:
        return np.array(self._entry)

    @property
    def bars(self) -> np.ndarray:
        return np.array(self._bars, dtype=np.int64)

    @property
    def filled(self) -> np.ndarray:
        return np.array(self._out["filled"])

    @property
    def unfilled(self) -> np.ndarray:
        return np.array(self._out["unfilled"])

    @property
    def closed_return(self) -> np.ndarray:
        return np.array(self._out["closed_return"])

    @property
    def dropped(self) -> np.ndarray:
        return np.array(self._dropped, dtype=bool)

    @property
    def closed(self) -> np.ndarray:
        return np.array(self._closed, dtype=bool)

    @property
    def weights(self) -> np.ndarray:
        """Position value / equity per asset at the last close (zeros when equity is not positive)."""
        e = self.equity
        if e > 0.0:
            return np.array([ui * mi / e for ui, mi in zip(self._u, self._m, strict=True)])
        return np.zeros(self.n_assets)

    @property
    def gross_exposure(self) -> float:
        """``sum |position value| / equity`` at the last close (0 when equity is not positive)."""
        e = self.equity
        return sum(abs(ui) * mi for ui, mi in zip(self._u, self._m, strict=True)) / e if e > 0.0 else 0.0

    @property
    def costs(self) -> float:
        """Trading costs of the last step (fee + spread + impact + liquidation fee, <= 0)."""
        return self.fee + self.spread + self.impact + self.liquidation_fee

    def ledger(self) -> dict[str, float]:
        """The last step's ledger totals (they sum to the equity change)."""
        return {name: float(getattr(self, name)) for name in LEDGER_FIELDS}

    def ledger_by_asset(self) -> dict[str, np.ndarray]:
        """The last step's ledger per asset; with ``funding_cash`` they sum to the equity change."""
        return {name: np.array(self._out[name]) for name in LEDGER_FIELDS}

    def history_frame(self) -> pd.DataFrame:
        """The recorded steps as a DataFrame (``record=True``); ``units`` holds one tuple per row."""
        cols = ["t", *LEDGER_FIELDS, "equity", "cash", "units", "liquidated"]
        return pd.DataFrame(self.history or [], columns=cols)
