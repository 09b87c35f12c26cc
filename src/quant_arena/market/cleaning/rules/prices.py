"""Rules on prices: quote_side, missing_values, non_positive_prices, ohlc_inconsistent, unadjusted_splits, bad_ticks and outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_arena.market.cleaning.arrays import (
    _MAD_TO_SIGMA,
    _block_scale_lower_bound,
    _ratio_text,
    _row_nanmedian,
    _series_nanmedian,
    _window_stat,
)


class PriceRules:
    """The prices rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def quote_side(self) -> None:
        cfg = self.cfg.quote_side
        if "quote_side" in self.raw.columns:
            codes, uniq = pd.factorize(self.raw["quote_side"].astype("str").str.lower())
            side = np.asarray(uniq, dtype=object)[codes] if len(uniq) > 1 else None
            side_const = str(uniq[0]) if len(uniq) == 1 else None
        else:
            side, side_const = None, cfg.default_side
        # per series side (the configured mapping wins over the column)
        override = {
            k: cfg.sides[sym]
            for k, (sym, _) in enumerate(self.series)
            if sym in cfg.sides
        }
        if side is None and not override:
            if side_const in ("bid", "ask", "unknown"):
                self._apply_side(np.ones(self.n_raw, dtype=bool), side_const)
            else:
                for k in range(self.S):
                    self._detail("quote_side", k, f"side={side_const}")
            return
        if side is None:
            side = np.full(self.n_raw, side_const, dtype=object)
        for k, s in override.items():
            side[self.sid == k] = s
        for s in ("bid", "ask", "unknown"):
            m = side == s
            if m.any():
                self._apply_side(m, s)
        for k in range(self.S):
            if ("quote_side", k) not in self.details:
                present = sorted(set(side[self.sid == k]))
                self._detail("quote_side", k, "side=" + "/".join(map(str, present)))

    def _apply_side(self, mask: np.ndarray, side: str) -> None:
        cfg = self.cfg.quote_side
        sids = np.unique(self.sid[mask])
        if side == "unknown" or cfg.target == "keep":
            msg = f"side={side}: kept as quoted" + (
                " (the source does not say)" if side == "unknown" else ""
            )
            self._event("quote_side", "flagged", mask, msg, quarantine=False)
            for k in sids:
                self._detail("quote_side", int(k), msg)
            return
        spread = np.full(self.n_raw, np.nan)
        for k in sids:
            sym = self.series[k][0]
            if sym in cfg.spread_bps:
                spread[self.sid == k] = cfg.spread_bps[sym]
        if "spread_bps" in self.raw.columns:
            col = self._numeric("spread_bps", required=False)
            spread = np.where(np.isfinite(col), col, spread)
        conv = mask & np.isfinite(spread) & (spread >= 0)
        keep = mask & ~conv
        if keep.any():
            msg = f"side={side}: kept (no spread_bps given to convert to mid)"
            self._event("quote_side", "flagged", keep, msg, quarantine=False)
            for k in np.unique(self.sid[keep]):
                self._detail("quote_side", int(k), msg)
        if conv.any():
            sign = -1.0 if side == "ask" else 1.0
            factor = 1.0 + sign * spread[conv] / 2e4
            for arr in (self.o, self.h, self.l, self.c):
                arr[conv] = arr[conv] * factor
            med = float(np.median(spread[conv]))
            msg = f"side={side}: converted to mid with half the spread (median {med:g} bps)"
            self._event("quote_side", "changed", conv, msg)
            for k in np.unique(self.sid[conv]):
                self._detail("quote_side", int(k), msg)
            if "quote_side" in self.extras.columns:
                qs = self.extras["quote_side"].astype(object).to_numpy(copy=True)
                qs[conv] = "mid"
                self.extras["quote_side"] = pd.Series(
                    qs, index=self.extras.index, dtype="str"
                )

    def missing_values(self) -> None:
        cfg = self.cfg.missing_values
        finite = (
            np.isfinite(self.o)
            & np.isfinite(self.h)
            & np.isfinite(self.l)
            & np.isfinite(self.c)
        )
        self._drop(
            "missing_values",
            ~finite | ~self.ts_valid,
            "missing or infinite price or timestamp",
            defer=True,
        )
        vbad = ~np.isfinite(self.v) & ~self.dead
        if vbad.any():
            if cfg.volume == "zero":
                self._event(
                    "missing_values", "changed", vbad, "missing volume set to 0"
                )
                self.v[vbad] = 0.0
            else:
                self._drop("missing_values", vbad, "missing volume", defer=True)

    def non_positive_prices(self) -> None:
        bad = (self.o <= 0) | (self.h <= 0) | (self.l <= 0) | (self.c <= 0)
        self._drop("non_positive_prices", bad, "price <= 0", defer=True)

    def ohlc_inconsistent(self) -> None:
        cfg = self.cfg.ohlc_inconsistent
        hi = np.maximum(self.o, self.c)
        lo = np.minimum(self.o, self.c)
        bad = (self.h < hi) | (self.l > lo) | (self.h < self.l)
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("ohlc_inconsistent", bad, "high/low do not cover open and close")
            return
        self._event(
            "ohlc_inconsistent",
            "changed",
            bad,
            "high/low widened to cover open and close",
        )
        h = np.maximum(np.maximum(self.h, self.l), hi)
        low = np.minimum(np.minimum(self.h, self.l), lo)
        self.h[bad], self.l[bad] = h[bad], low[bad]

    def unadjusted_splits(self) -> None:
        cfg = self.cfg.unadjusted_splits
        adj = self.adj if self.adj is not None else np.full(self.sid.size, np.nan)
        has_adj = np.isfinite(adj)
        eligible_sid = np.array(
            [self.calendar_of[k] in cfg.calendars for k in range(self.S)], dtype=bool
        ) | (np.bincount(self.sid[has_adj], minlength=self.S) > 0)
        if not eligible_sid.any():
            return
        prev = np.flatnonzero(self._prev_same())  # t with t-1 in the same series
        prev = prev[eligible_sid[self.sid[prev]]]
        if prev.size == 0:
            return
        ratio = self.c[prev - 1] / self.o[prev]
        ratios = np.asarray(cfg.ratios, dtype=np.float64)
        dist = np.abs(ratio[:, None] / ratios[None, :] - 1.0)
        best = np.argmin(dist, axis=1)
        near = dist[np.arange(prev.size), best] <= cfg.tolerance
        t, r = prev[near], ratios[best[near]]
        if t.size == 0:
            return
        # confirmation
        adj_ok = has_adj[t] & has_adj[t - 1]
        f_prev = self.c[t - 1] / adj[t - 1]
        f_now = self.c[t] / adj[t]
        with np.errstate(invalid="ignore", divide="ignore"):
            adj_confirms = np.abs((f_prev / f_now) / r - 1.0) <= cfg.adj_tolerance
        starts = np.flatnonzero(self._starts())
        stops = np.r_[starts[1:], self.sid.size]
        series_pos = np.searchsorted(starts, t, side="right") - 1
        lo_bound, hi_bound = starts[series_pos], stops[series_pos]
        w = cfg.volume_window
        before = _window_stat(self.v, t - w, t, lo_bound, hi_bound, _row_nanmedian)
        after = _window_stat(self.v, t, t + w, lo_bound, hi_bound, _row_nanmedian)
        with np.errstate(invalid="ignore", divide="ignore"):
            vr = after / before
        vol_confirms = (
            np.where(r > 1, vr >= np.sqrt(r), vr <= np.sqrt(r))
            if cfg.volume_confirm
            else np.ones(t.size, bool)
        )
        level_after = _window_stat(self.c, t, t + w, lo_bound, hi_bound, _row_nanmedian)
        stays = np.abs(np.log(level_after / self.o[t])) < np.abs(np.log(r)) / 2
        ok = np.where(adj_ok, adj_confirms, vol_confirms & stays)
        t, r = t[ok], r[ok]
        if t.size == 0:
            return
        how = np.where(adj_ok[ok], "adj_close", "volume")
        for k, ti, ri, hw in zip(self.sid[t], t, r, how, strict=True):
            self._detail(
                "unadjusted_splits",
                int(k),
                f"{_ratio_text(ri)} split on {pd.Timestamp(self.ts[ti], tz='UTC').date()} (confirmed by {hw})",
            )
        # cumulative factor: product of the ratios of all later splits of the series
        step = np.ones(self.sid.size)
        np.multiply.at(step, t - 1, r)
        factor = np.ones(self.sid.size)
        for _, a, b in self._series_slices():
            factor[a:b] = np.cumprod(step[a:b][::-1])[::-1]
        changed = np.flatnonzero(factor != 1.0)
        detail = [
            f"prices / {f:g}, volume x {f:g} (unadjusted split)"
            for f in factor[changed]
        ]
        self._event("unadjusted_splits", "changed", changed, detail, found=False)
        self.counts[("unadjusted_splits", "found")] += np.bincount(
            self.sid[t], minlength=self.S
        )
        for arr in (self.o, self.h, self.l, self.c):
            arr[changed] = arr[changed] / factor[changed]
        self.v[changed] = self.v[changed] * factor[changed]

    def bad_ticks_and_outliers(self) -> None:
        bt, out = self.cfg.bad_ticks, self.cfg.outliers
        if not (bt.enabled or out.enabled) or self.sid.size < 3:
            return
        n = self.sid.size
        same_prev = self._prev_same()
        lc = np.log(self.c)
        r = np.full(n, np.nan)
        r[1:] = lc[1:] - lc[:-1]
        r[~same_prev] = np.nan
        absr = np.abs(r)
        absr_nz = np.where(absr > 0, absr, np.nan)
        starts = np.flatnonzero(~same_prev)
        stops = np.r_[starts[1:], n]
        self._pending_drop = np.zeros(n, dtype=bool)
        flagged_bad = np.zeros(n, dtype=bool)
        z_min = min(
            bt.z_threshold if bt.enabled else np.inf,
            out.z_threshold if out.enabled else np.inf,
        )
        # candidates from a cheap lower bound of the local scale (block medians); the exact
        # scale, the median |return| of the previous `window` bars, is computed at candidates only
        lower = _block_scale_lower_bound(absr_nz, starts, stops, bt.window)
        with np.errstate(invalid="ignore"):
            cand = np.flatnonzero(absr >= 0.5 * z_min * lower * _MAD_TO_SIGMA)
        if cand.size:
            scale, lo_b, hi_b = self._local_scale(absr_nz, cand, starts, stops)
            scale = scale * _MAD_TO_SIGMA
            with np.errstate(invalid="ignore", divide="ignore"):
                z = r[cand] / scale
            reverting = np.zeros(cand.size, dtype=bool)
            if bt.enabled:
                spike = self._close_spikes(cand, z, scale, r, lo_b, hi_b)
                t = cand[spike]
                flagged_bad[t] = True
                reverting = np.isin(cand, t + 1)
                if t.size:
                    self._bad_close(t, z[spike])
            if out.enabled:
                big = (np.abs(z) >= out.z_threshold) & ~flagged_bad[cand] & ~reverting
                t = cand[big]
                detail = [
                    f"log return {ri:+.4f} = {zi:+.1f} robust sd"
                    for ri, zi in zip(r[t], z[big], strict=True)
                ]
                self._event("outliers", "flagged", t, detail)
        if bt.enabled:
            self._bad_wicks(starts, stops, flagged_bad)
        if self._pending_drop.any():
            self._take(~self._pending_drop)

    def _local_scale(
        self, x: np.ndarray, cand: np.ndarray, starts: np.ndarray, stops: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scale, series start, series stop) of each candidate row: the median of ``x`` over the
        ``bad_ticks.window`` rows before it in its series (``min_periods`` finite values), else
        the series' median of ``x``. Rows of a series are ``starts[i]:stops[i]``."""
        bt = self.cfg.bad_ticks
        pos = np.searchsorted(starts, cand, side="right") - 1
        lo_b, hi_b = starts[pos], stops[pos]
        scale = _window_stat(
            x, cand - bt.window, cand, lo_b, hi_b, _row_nanmedian, bt.min_periods
        )
        if not np.isfinite(scale).all():
            glob = _series_nanmedian(x, self.sid, self.S)
            scale = np.where(np.isfinite(scale), scale, glob[self.sid[cand]])
        return scale, lo_b, hi_b

    def _close_spikes(
        self,
        cand: np.ndarray,
        z: np.ndarray,
        scale: np.ndarray,
        r: np.ndarray,
        lo_b: np.ndarray,
        hi_b: np.ndarray,
    ) -> np.ndarray:
        """Which candidates jump by z_threshold and revert on the next bar, without volume."""
        bt = self.cfg.bad_ticks
        n = self.sid.size
        has_next = cand + 1 < hi_b
        r_next = np.where(has_next, r[np.minimum(cand + 1, n - 1)], np.nan)
        with np.errstate(invalid="ignore"):
            spike = (
                (np.abs(z) >= bt.z_threshold)
                & (np.abs(r_next) >= bt.z_threshold * scale)
                & (np.sign(r_next) == -np.sign(r[cand]))
                & (
                    np.abs(r[cand] + r_next)
                    <= (1 - bt.revert_fraction) * np.abs(r[cand])
                )
            )
        si = np.flatnonzero(spike)
        if si.size:  # a spike on heavy volume traded: it is an outlier, not a bad print
            vmed = _window_stat(
                self.v,
                cand[si] - bt.window,
                cand[si],
                lo_b[si],
                hi_b[si],
                _row_nanmedian,
                bt.min_periods,
            )
            loud = self.v[cand[si]] > bt.max_volume_ratio * vmed
            spike[si[loud]] = False
        return spike

    def _flag_or_drop_bad_ticks(self, t: np.ndarray, detail: list[str]) -> bool:
        """Flag or drop the bad ticks at rows ``t`` when ``bad_ticks.action`` says so; ``False``
        when they are to be repaired (the caller repairs them)."""
        action = self.cfg.bad_ticks.action
        if action == "flag":
            self._event("bad_ticks", "flagged", t, detail)
            return True
        if action == "drop":
            self._event("bad_ticks", "dropped", t, detail)
            self._pending_drop[t] = True
            return True
        return False

    def _bad_close(self, t: np.ndarray, z: np.ndarray) -> None:
        detail = [
            f"close spike {zi:+.1f} robust sd that reverts on the next bar" for zi in z
        ]
        if self._flag_or_drop_bad_ticks(t, detail):
            return
        self._event("bad_ticks", "changed", t, [d + " (repaired)" for d in detail])
        pc, nc = self.c[t - 1], self.c[t + 1]
        c_new = np.sqrt(pc * nc)
        jump_open = np.abs(np.log(self.o[t] / pc)) > np.abs(np.log(self.c[t] / pc)) / 2
        o_new = np.where(jump_open, pc, self.o[t])
        hi_n = np.maximum(self.h[t - 1], self.h[t + 1])
        lo_n = np.minimum(self.l[t - 1], self.l[t + 1])
        self.h[t] = np.maximum(np.maximum(o_new, c_new), np.minimum(self.h[t], hi_n))
        self.l[t] = np.minimum(np.minimum(o_new, c_new), np.maximum(self.l[t], lo_n))
        self.o[t], self.c[t] = o_new, c_new

    def _bad_wicks(
        self, starts: np.ndarray, stops: np.ndarray, skip: np.ndarray
    ) -> None:
        bt = self.cfg.bad_ticks
        # ratios, not logs, over all bars (median and thresholds commute with log)
        up_x = self.h / np.maximum(self.o, self.c)
        down_x = np.minimum(self.o, self.c) / self.l
        wick_x = np.maximum(up_x, down_x)
        rng_x = self.h / self.l
        rng_nz = np.where(rng_x > 1, rng_x, np.nan)
        lower = _block_scale_lower_bound(rng_nz, starts, stops, bt.window)
        with np.errstate(invalid="ignore"):
            thr = np.maximum(bt.min_wick, 0.5 * bt.wick_threshold * np.log(lower))
            cand = np.flatnonzero((wick_x > np.exp(thr)) & ~skip)
        if cand.size == 0:
            return
        scale, lo_b, hi_b = self._local_scale(rng_nz, cand, starts, stops)
        scale = np.log(scale)
        up, down = np.log(up_x[cand]), np.log(down_x[cand])
        wick = np.maximum(up, down)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = wick / scale
        bad = (ratio >= bt.wick_threshold) & (wick >= bt.min_wick)
        t = cand[bad]
        if t.size == 0:
            return
        up, down = up[bad], down[bad]
        body_hi = np.maximum(self.o[t], self.c[t])
        body_lo = np.minimum(self.o[t], self.c[t])
        is_low = down >= up
        detail = [
            f"{'low' if lo else 'high'} {(self.l if lo else self.h)[ti]:g} is {q:.0f}x the typical range beyond the body"
            for lo, ti, q in zip(is_low, t, ratio[bad], strict=True)
        ]
        if self._flag_or_drop_bad_ticks(t, detail):
            return
        self._event(
            "bad_ticks",
            "changed",
            t,
            [d + " (clipped to the neighbouring bars)" for d in detail],
        )
        has_prev = t > lo_b[bad]
        has_next = t + 1 < hi_b[bad]
        tp, tn = np.where(has_prev, t - 1, t), np.where(has_next, t + 1, t)
        nb_hi = np.maximum(
            np.where(has_prev, self.h[tp], -np.inf),
            np.where(has_next, self.h[tn], -np.inf),
        )
        nb_lo = np.minimum(
            np.where(has_prev, self.l[tp], np.inf),
            np.where(has_next, self.l[tn], np.inf),
        )
        self.l[t] = np.where(
            is_low, np.minimum(body_lo, np.maximum(self.l[t], nb_lo)), self.l[t]
        )
        self.h[t] = np.where(
            ~is_low, np.maximum(body_hi, np.minimum(self.h[t], nb_hi)), self.h[t]
        )
