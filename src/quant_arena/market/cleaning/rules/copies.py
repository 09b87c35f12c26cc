"""Rules on stale or copied data: repeated_bars, open_is_prev_close, copy_series."""

from __future__ import annotations

import numpy as np

from quant_arena.market.cleaning.arrays import (
    _iso,
)
from quant_arena.market.cleaning.config import CopySeriesRule


class CopyRules:
    """The copies rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def repeated_bars(self) -> None:
        cfg = self.cfg.repeated_bars
        cand = np.flatnonzero((self.v > 0) & (self.h > self.l))
        if cand.size < 2:
            return
        key = np.zeros(cand.size, dtype=np.uint64)
        primes = (
            0x9E3779B97F4A7C15,
            0xC2B2AE3D27D4EB4F,
            0x165667B19E3779F9,
            0xD6E8FEB86659FD93,
            0xFF51AFD7ED558CCD,
        )
        with np.errstate(over="ignore"):
            for arr, p in zip(
                (self.c, self.v), primes, strict=False
            ):  # verified on all five below
                key ^= arr[cand].view(np.uint64) * np.uint64(p)
            key ^= self.sid[cand].astype(np.uint64) * np.uint64(0x94D049BB133111EB)
        # keys seen twice are rare: find them with a plain sort (fast), then argsort only those
        srt = np.sort(key)
        dup_keys = np.unique(srt[1:][srt[1:] == srt[:-1]])
        if dup_keys.size == 0:
            return
        twice = (
            dup_keys[np.searchsorted(dup_keys, key).clip(0, dup_keys.size - 1)] == key
        )
        cand, key = cand[twice], key[twice]
        if cand.size < 2:
            return
        order = cand[np.argsort(key, kind="stable")]
        a, b = order[:-1], order[1:]
        eq = self.sid[a] == self.sid[b]
        for arr in (self.o, self.h, self.l, self.c, self.v):
            eq &= arr[a] == arr[b]
        if not eq.any():
            return
        a, b = a[eq], b[eq]
        dist = (self.ts[b] - self.ts[a]) // self.step_by_sid[self.sid[b]]
        ok = (dist > 0) & (dist <= cfg.max_distance_bars)
        a, b, dist = a[ok], b[ok], dist[ok]
        if b.size == 0:
            return
        detail = [
            f"identical OHLCV to the bar {d} bar(s) earlier at {t}"
            for d, t in zip(dist, _iso(self.ts[a]), strict=True)
        ]
        if cfg.action == "flag":
            self._event("repeated_bars", "flagged", b, detail)
        else:
            self._event("repeated_bars", "dropped", b, detail)
            self.dead[b] = True
            self._compact()

    def open_is_prev_close(self) -> None:
        cfg = self.cfg.open_is_prev_close
        same_prev = self._prev_same()
        step = self._step_per_row()
        copy = np.zeros(self.sid.size, dtype=bool)
        copy[1:] = (
            (self.o[1:] == self.c[:-1])
            & same_prev[1:]
            & (self.ts[1:] - self.ts[:-1] == step[1:])
        )
        comparable = np.zeros(self.sid.size, dtype=bool)
        comparable[1:] = (
            same_prev[1:] & (self.ts[1:] - self.ts[:-1] == step[1:]) & ~self.filled[1:]
        )
        copy &= comparable  # bars synthesised by an earlier gap fill are not the source's opens
        n_copy = np.bincount(self.sid[copy], minlength=self.S)
        n_cmp = np.bincount(self.sid[comparable], minlength=self.S)
        self._event(
            "open_is_prev_close",
            "flagged",
            copy,
            "open equals the previous close",
            quarantine=cfg.quarantine_rows,
        )
        for k in range(self.S):
            if n_cmp[k]:
                share = n_copy[k] / n_cmp[k]
                verdict = (
                    "opens are copies of the previous close (synthetic opens)"
                    if share >= cfg.synthetic_share
                    else "normal for continuous trading"
                )
                self._detail(
                    "open_is_prev_close",
                    k,
                    f"share {share:.3f} of consecutive bars: {verdict}",
                )

    def copy_series(self) -> None:
        cfg = self.cfg.copy_series
        slices = {
            k: (a, b) for k, a, b in self._series_slices() if b - a >= cfg.min_overlap
        }
        by_tf: dict[str, list[int]] = {}
        for k in slices:
            by_tf.setdefault(self.series[k][1], []).append(k)
        drop = np.zeros(self.sid.size, dtype=bool)
        done: set[int] = set()
        for ks in by_tf.values():
            for i, ka in enumerate(ks):
                for kb in ks[i + 1 :]:
                    if ka in done or kb in done:
                        continue
                    found = self._compare_series(slices[ka], slices[kb], cfg)
                    if found is None:
                        continue
                    corr, n_overlap, ident, level_bps, first_b = found
                    na, nb = (
                        slices[ka][1] - slices[ka][0],
                        slices[kb][1] - slices[kb][0],
                    )
                    copy, orig = (kb, ka) if nb <= na else (ka, kb)
                    sym_o = self.series[orig][0]
                    sign = 1 if copy == kb else -1
                    text = (
                        f"returns match {sym_o} ({self.series[orig][1]}): corr {corr:.4f} over {n_overlap} "
                        f"shared bars compared, {ident:.0%} identical returns, median price level "
                        f"{sign * level_bps:+.2f} bps vs {sym_o}"
                    )
                    self._detail("copy_series", copy, text)
                    self._detail(
                        "copy_series",
                        orig,
                        f"original of {self.series[copy][0]} (a copy)",
                    )
                    a, b = slices[copy]
                    if cfg.action == "drop":
                        drop[a:b] = True
                        self._event(
                            "copy_series",
                            "dropped",
                            np.arange(a, b),
                            "copy of " + sym_o,
                        )
                    else:
                        at = (
                            first_b
                            if copy == kb
                            else self._first_overlap(slices[copy], slices[orig])
                        )
                        self._event(
                            "copy_series", "flagged", np.array([at]), text, found=False
                        )
                        self.counts[("copy_series", "found")][copy] += n_overlap
                    done.add(copy)
        if drop.any():
            self._take(~drop)

    def _first_overlap(self, sa: tuple[int, int], sb: tuple[int, int]) -> int:
        ta, tb = self.ts[sa[0] : sa[1]], self.ts[sb[0] : sb[1]]
        pos = np.searchsorted(tb, ta).clip(0, tb.size - 1)
        hit = np.flatnonzero(tb[pos] == ta)
        return sa[0] + int(hit[0]) if hit.size else sa[0]

    def _compare_series(
        self, sa: tuple[int, int], sb: tuple[int, int], cfg: CopySeriesRule
    ) -> tuple[float, int, float, float, int] | None:
        ta, tb = self.ts[sa[0] : sa[1]], self.ts[sb[0] : sb[1]]
        lo, hi = max(ta[0], tb[0]), min(ta[-1], tb[-1])
        if hi < lo:
            return None
        # the last `max_compare_bars` bars of b inside the common span, matched in a
        b0, b1 = np.searchsorted(tb, lo), np.searchsorted(tb, hi, side="right")
        if b1 - b0 < cfg.min_overlap:
            return None
        b0 = max(b0, b1 - cfg.max_compare_bars)
        pos = np.searchsorted(ta, tb[b0:b1]).clip(0, ta.size - 1)
        hit = ta[pos] == tb[b0:b1]
        n_hit = int(hit.sum())
        if n_hit < cfg.min_overlap:
            return None
        ib = np.flatnonzero(hit) + b0
        ia = pos[hit]
        ca, cb = self.c[sa[0] + ia], self.c[sb[0] + ib]
        ra, rb = np.diff(np.log(ca)), np.diff(np.log(cb))
        if ra.std() == 0 or rb.std() == 0:
            return None
        corr = float(np.corrcoef(ra, rb)[0, 1])
        if not corr >= cfg.min_corr:
            return None
        ident = float(np.mean(np.abs(ra - rb) <= 1e-12 + 1e-9 * np.abs(ra)))
        level = float(np.median(np.log(cb / ca)) * 1e4)
        first_b = sb[0] + int(np.searchsorted(tb, lo))
        return corr, n_hit, ident, level, first_b
