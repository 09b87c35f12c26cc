"""Perpetual-futures columns: funding_carried, funding_missing, funding_outliers, mark_deviation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_arena.market.cleaning.arrays import (
    _NS,
    _iso,
    _seconds_text,
)
from quant_arena.market.schema import (
    MARK_COLUMNS,
    timeframe_seconds,
)


class PerpRules:
    """The perp rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def perp(self) -> None:
        """Funding and mark-price columns: never on filled bars; then the four perp rules."""
        self.perp_out: dict[str, np.ndarray] = {}
        has_fr = "funding_rate" in self.extras.columns
        has_mark = all(c in self.extras.columns for c in MARK_COLUMNS)
        if has_fr:
            raw_fr = pd.to_numeric(
                self.extras["funding_rate"], errors="coerce"
            ).to_numpy(dtype=np.float64)
            fr = np.where(self.filled, np.nan, raw_fr[self.rid])
            if self.cfg.funding_carried.enabled:
                self._carry_funding(raw_fr, fr)
            if self.cfg.funding_missing.enabled:
                self._funding_missing(fr)
            if self.cfg.funding_outliers.enabled:
                self._funding_outliers(fr)
            self.perp_out["funding_rate"] = fr
        if has_mark:
            marks = [
                np.where(
                    self.filled,
                    np.nan,
                    pd.to_numeric(self.extras[c], errors="coerce").to_numpy(
                        dtype=np.float64
                    )[self.rid],
                )
                for c in MARK_COLUMNS
            ]
            self._mark_checks(marks)
            self.perp_out.update(dict(zip(MARK_COLUMNS, marks, strict=True)))

    def _carry_funding(self, raw_fr: np.ndarray, fr: np.ndarray) -> None:
        kept = np.zeros(self.n_raw, dtype=bool)
        kept[self.rid[~self.filled]] = True
        lost = np.flatnonzero(~kept & ~np.isnan(raw_fr) & self.ts_valid_raw)
        if lost.size == 0:
            return
        real = np.flatnonzero(~self.filled)
        gone_for_good = np.zeros(self.S, dtype=np.int64)
        took: list[int] = []
        details: list[str] = []
        for r in lost[np.argsort(self.ts_utc_raw[lost], kind="stable")]:
            k, t = int(self.sid_raw[r]), int(self.ts_utc_raw[r])
            rows = real[self.sid[real] == k]
            j = int(np.searchsorted(self.ts[rows], t, side="left"))
            if j == rows.size:
                gone_for_good[k] += 1
                continue
            i = int(rows[j])
            if self.ts[i] == t and not np.isnan(fr[i]):
                continue  # a duplicate of the kept bar: the same funding event, paid once
            fr[i] = raw_fr[r] if np.isnan(fr[i]) else fr[i] + raw_fr[r]
            took.append(i)
            details.append(
                f"funding {raw_fr[r]:.6g} of the dropped bar at {_iso(np.array([t]))[0]} charged here"
            )
        if took:
            self._event(
                "funding_carried", "flagged", np.asarray(took, dtype=np.int64), details
            )
        for k in np.flatnonzero(gone_for_good):
            self._detail(
                "funding_carried",
                int(k),
                f"{gone_for_good[k]} funding events of dropped last bars lost",
            )

    def _funding_missing(self, fr: np.ndarray) -> None:
        cfg = self.cfg.funding_missing
        flagged: list[np.ndarray] = []
        texts: list[str] = []
        for k, a, b in self._series_slices():
            rows = np.flatnonzero(~np.isnan(fr[a:b])) + a
            if rows.size < 2:
                if rows.size == 0:
                    self._detail("funding_missing", k, "no funding events")
                continue
            when = self.ts[rows] + self.step_by_sid[k]  # charged at the bar's close
            gaps = np.diff(when)
            if cfg.interval is not None:
                interval = timeframe_seconds(cfg.interval) * _NS
            else:
                vals, cnt = np.unique(gaps, return_counts=True)
                interval = int(vals[np.argmax(cnt)])
            if interval < self.step_by_sid[k]:
                self._detail(
                    "funding_missing",
                    k,
                    "funding interval shorter than a bar: not checked",
                )
                continue
            hole = np.flatnonzero(gaps > 1.5 * interval)
            self._detail(
                "funding_missing", k, f"interval {_seconds_text(interval // _NS)}"
            )
            if hole.size == 0:
                continue
            n_missing = np.rint(gaps[hole] / interval).astype(np.int64) - 1
            after = rows[hole + 1]
            flagged.append(after)
            texts += [
                f"{m} funding event(s) missing before {t}"
                for m, t in zip(n_missing.tolist(), _iso(when[hole + 1]), strict=True)
            ]
            self._detail(
                "funding_missing",
                k,
                f"{hole.size} holes, {int(n_missing.sum())} events missing",
            )
        if flagged:
            self._event("funding_missing", "flagged", np.concatenate(flagged), texts)

    def _funding_outliers(self, fr: np.ndarray) -> None:
        cfg = self.cfg.funding_outliers
        with np.errstate(invalid="ignore"):
            bad = np.abs(fr) > cfg.max_abs_rate
        if not bad.any():
            return
        detail = [
            f"funding rate {x:.6g} outside +-{cfg.max_abs_rate:g}" for x in fr[bad]
        ]
        if cfg.action == "clip":
            self._event(
                "funding_outliers", "changed", bad, [d + ": clipped" for d in detail]
            )
            fr[bad] = np.clip(fr[bad], -cfg.max_abs_rate, cfg.max_abs_rate)
        else:
            self._event("funding_outliers", "flagged", bad, detail)

    def _mark_checks(self, marks: list[np.ndarray]) -> None:
        cfg = self.cfg.mark_deviation
        mo, mh, ml, mc = marks
        present = np.isfinite(mo) & np.isfinite(mh) & np.isfinite(ml) & np.isfinite(mc)
        with np.errstate(invalid="ignore"):
            broken = present & (
                (np.minimum(np.minimum(mo, mh), np.minimum(ml, mc)) <= 0)
                | (mh < np.maximum(mo, mc))
                | (ml > np.minimum(mo, mc))
            )
        partial = ~present & ~(
            np.isnan(mo) & np.isnan(mh) & np.isnan(ml) & np.isnan(mc)
        )
        wipe = broken | partial
        if wipe.any():
            self._event(
                "mark_deviation",
                "changed",
                wipe,
                "mark candle incomplete or not a candle: set to NaN",
            )
        far = np.zeros(mo.size, dtype=bool)
        if cfg.enabled:
            with np.errstate(invalid="ignore", divide="ignore"):
                dev = np.abs(mc / self.c - 1.0)
            far = present & ~broken & (dev > cfg.max_rel_deviation)
            if far.any():
                detail = [
                    f"mark close {m:.6g} is {d:.2%} from the close {c:.6g}"
                    for m, d, c in zip(mc[far], dev[far], self.c[far], strict=True)
                ]
                if cfg.action == "drop_mark":
                    self._event(
                        "mark_deviation",
                        "changed",
                        far,
                        [d + ": mark set to NaN" for d in detail],
                    )
                else:
                    self._event("mark_deviation", "flagged", far, detail)
        clear = wipe | (far if cfg.action == "drop_mark" else np.zeros_like(far))
        for arr in marks:
            arr[clear] = np.nan
        for k, a, b in self._series_slices():
            n_none = int((~present[a:b] & ~self.filled[a:b]).sum())
            if n_none and n_none < b - a:
                self._detail(
                    "mark_deviation",
                    k,
                    f"{n_none} traded bars without a mark candle (NaN)",
                )
