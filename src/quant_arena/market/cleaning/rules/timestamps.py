"""Rules on the time axis: timezone (to UTC), incomplete_bar, off_grid, out_of_order (and the sort), duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_arena.market.cleaning.arrays import (
    _NS,
    _WEEK_NS,
    _mod_by_step,
)
from quant_arena.market.cleaning.config import TimezoneRule
from quant_arena.market.errors import DataError
from quant_arena.market.schema import (
    out_of_order_rows,
)


class TimestampRules:
    """The timestamps rules of the cleaning engine (methods of :class:`~quant_arena.market.cleaning.engine.Cleaner`)."""

    def timestamps(self) -> None:
        """UTC int64 timestamps: by the timezone rule, or (rule off) only from aware stamps."""
        if self.cfg.timezone.enabled:
            self.timezone()
        else:
            col = self.raw["timestamp"]
            if not isinstance(col.dtype, pd.DatetimeTZDtype):
                raise DataError(
                    "timestamps are not time-zone aware and the timezone rule is off",
                    rule="timezone",
                )
            idx = pd.DatetimeIndex(col).tz_convert("UTC").as_unit("ns")
            self.ts, self.ts_valid = idx.asi8.copy(), ~idx.isna()
        self.ts_utc_raw = self.ts.copy()
        self.ts_valid_raw = self.ts_valid.copy()

    def timezone(self) -> None:
        cfg = self.cfg.timezone
        col = self.raw["timestamp"]
        dtype = col.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            idx = pd.DatetimeIndex(col)
            zone = str(dtype.tz)
            utc = idx.tz_convert("UTC").as_unit("ns")
            if zone.upper() not in ("UTC", "UTC+00:00", "ETC/UTC", "Z"):
                msg = f"converted from {zone} to UTC"
                self._event("timezone", "changed", np.ones(self.n_raw, dtype=bool), msg)
                for k in range(self.S):
                    self._detail("timezone", k, msg)
            self.ts = utc.asi8.copy()
            self.ts_valid = ~idx.isna()
        elif pd.api.types.is_datetime64_dtype(dtype):
            self._localize(pd.DatetimeIndex(col).as_unit("ns"), cfg)
        elif not (
            pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)
        ):
            raise DataError(
                f"timestamp column has dtype {dtype}; expected datetimes",
                rule="unparseable_timestamps",
            )
        else:  # strings: offsets win, naive stamps read in the configured zone
            text = col.astype("str")
            has_offset = text.str.contains(
                r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False
            ).to_numpy()
            parsed = pd.to_datetime(
                col.where(has_offset), utc=True, errors="coerce", format="mixed"
            )
            ts = pd.DatetimeIndex(parsed).as_unit("ns").asi8.copy()
            nat = pd.DatetimeIndex(parsed).isna()
            if (~has_offset).any():
                naive = pd.DatetimeIndex(
                    pd.to_datetime(
                        col.where(~has_offset), errors="coerce", format="mixed"
                    )
                ).as_unit("ns")
                self._localize(naive, cfg, rows=~has_offset)
                ts[~has_offset] = self.ts[~has_offset]
                nat = np.where(has_offset, nat, ~self.ts_valid)
            bad = nat & col.notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"timestamp {col.iloc[i]!r} cannot be parsed",
                    row=self.labels[i],
                    rule="unparseable_timestamps",
                )
            self.ts = ts
            self.ts_valid = ~np.asarray(nat)

    def _localize(
        self, naive: pd.DatetimeIndex, cfg: TimezoneRule, rows: np.ndarray | None = None
    ) -> None:
        """Read naive wall times in each series' configured zone; record the conversion."""
        rows = np.ones(self.n_raw, dtype=bool) if rows is None else rows
        zone_of = [
            cfg.per_symbol.get(sym, cfg.source_timezone) for sym, _ in self.series
        ]
        ts = naive.asi8.copy()
        valid = ~naive.isna()
        for zone in sorted(set(zone_of)):
            sids = [k for k, z in enumerate(zone_of) if z == zone]
            mask = rows & np.isin(self.sid, sids)
            if not mask.any():
                continue
            if zone == "UTC":
                msg = "naive timestamps read as UTC"
                self._event("timezone", "flagged", mask, msg, quarantine=False)
            else:
                loc = naive[mask].tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
                bad = loc.isna() & ~naive[mask].isna()
                if bad.any():
                    i = int(np.flatnonzero(mask)[np.flatnonzero(bad)[0]])
                    raise DataError(
                        f"local time {naive[i]} does not exist or is ambiguous in {zone} (DST change)",
                        row=self.labels[i],
                        rule="timezone",
                    )
                ts[mask] = loc.tz_convert("UTC").as_unit("ns").asi8
                msg = f"naive timestamps read in {zone} and converted to UTC"
                self._event("timezone", "changed", mask, msg)
            for k in sids:
                self._detail("timezone", k, msg)
        self.ts = ts
        self.ts_valid = valid

    def incomplete_bar(self) -> None:
        forming = self.flags["incomplete_bar"][self.rid] & ~self.dead
        if not forming.any():
            return
        msg = "bar still forming when ingested (opened before the run, closes after it): not final"
        if self.cfg.incomplete_bar.action == "drop":
            self._drop("incomplete_bar", forming, msg, defer=True)
        else:
            self._event("incomplete_bar", "flagged", forming, msg)

    def off_grid(self) -> None:
        cfg = self.cfg.off_grid
        step = self._step_per_row()
        rem = _mod_by_step(self.ts, step, self.step_by_sid)
        bad = (rem != 0) & (step < _WEEK_NS) & ~self.dead
        if not bad.any():
            return
        if cfg.action == "drop":
            self._drop("off_grid", bad, "timestamp off the bar grid", defer=True)
            return
        shift = -rem[bad]
        if cfg.snap_to == "nearest":
            shift = np.where(2 * rem[bad] >= step[bad], step[bad] - rem[bad], shift)
        detail = [f"snapped {s / _NS:+.3f} s to the bar grid" for s in shift]
        self._event("off_grid", "changed", bad, detail)
        self.ts[bad] = self.ts[bad] + shift

    def sort(self) -> None:
        self._compact()
        self._arrays.remove("ts_valid")  # every timestamp left is valid
        if self.cfg.out_of_order.enabled:
            self.out_of_order()
        ok = (self.sid[1:] > self.sid[:-1]) | (
            (self.sid[1:] == self.sid[:-1]) & (self.ts[1:] >= self.ts[:-1])
        )
        if not ok.all():
            self._take(np.lexsort((self.ts, self.sid)))

    def out_of_order(self) -> None:
        """Count the rows the sort is about to move: out of order in the file or in the input."""
        in_file = self.flags["out_of_order"][self.rid]
        raw_ts = self.ts_utc_raw[self.rid]
        in_input = out_of_order_rows(raw_ts, self.sid) & ~in_file
        moved = in_file | in_input
        self._newest_first(raw_ts)
        if not moved.any():
            return
        detail = np.where(
            in_file,
            "out of time order in the source file: sorted into time order",
            "out of time order in the input frame: sorted into time order",
        )
        self._event("out_of_order", "changed", moved, detail[moved])
        for k, n in enumerate(np.bincount(self.sid[moved], minlength=self.S)):
            if n:
                self._detail("out_of_order", k, f"{n} rows out of time order: sorted")

    def _newest_first(self, raw_ts: np.ndarray) -> None:
        """Say so in the report when a series comes in newest first (the sort reverses it)."""
        if (
            self.sid[1:] >= self.sid[:-1]
        ).all():  # series already together (the loaders' order)
            t, k = raw_ts, self.sid
        else:
            grp = np.argsort(self.sid, kind="stable")
            t, k = raw_ts[grp], self.sid[grp]
        same = k[1:] == k[:-1]
        down = np.bincount(k[1:][same & (t[1:] < t[:-1])], minlength=self.S)
        up = np.bincount(k[1:][same & (t[1:] > t[:-1])], minlength=self.S)
        for j in np.flatnonzero(down > up):
            self._detail(
                "out_of_order", int(j), "the input runs newest first: read in reverse"
            )

    def duplicates(self) -> None:
        cfg = self.cfg.duplicates
        same = (
            np.flatnonzero(
                (self.ts[1:] == self.ts[:-1]) & (self.sid[1:] == self.sid[:-1])
            )
            + 1
        )
        if same.size == 0:
            return
        # work on the (few) rows of duplicate groups only, then compact once
        members = np.union1d(same, same - 1)
        dup_prev = np.isin(members, same)
        grp = np.cumsum(~dup_prev) - 1
        exact = dup_prev.copy()
        prev = np.maximum(members - 1, 0)
        for a in (self.o, self.h, self.l, self.c, self.v):
            exact &= a[members] == a[prev]
        self._event(
            "duplicates", "dropped", members[exact], "exact copy of the previous row"
        )
        live = members[~exact]
        lgrp = grp[~exact]
        first = np.r_[True, lgrp[1:] != lgrp[:-1]]
        last = np.r_[lgrp[1:] != lgrp[:-1], True]
        n_live = np.bincount(lgrp)
        conflict = n_live[lgrp] >= 2
        drop = np.zeros(self.sid.size, dtype=bool)
        drop[members[exact]] = True
        if conflict.any():
            if cfg.keep == "first":
                gone, msg = (
                    conflict & ~first,
                    "conflicting row for the same timestamp (kept the first)",
                )
            elif cfg.keep == "last":
                gone, msg = (
                    conflict & ~last,
                    "conflicting row for the same timestamp (kept the last)",
                )
            elif cfg.keep == "none":
                gone, msg = (
                    conflict,
                    "conflicting rows for the same timestamp (all dropped)",
                )
            else:  # merge into the first live row of the group
                gone, msg = (
                    conflict & ~first,
                    "merged into the first row of its timestamp",
                )
                rows, g = live[conflict], lgrp[conflict]
                starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
                head = rows[starts]
                tail = rows[np.r_[starts[1:], rows.size] - 1]
                self._event(
                    "duplicates",
                    "changed",
                    head,
                    "merged with the other rows of its timestamp",
                    found=False,
                )
                self.h[head] = np.maximum.reduceat(self.h[rows], starts)
                self.l[head] = np.minimum.reduceat(self.l[rows], starts)
                self.v[head] = np.add.reduceat(self.v[rows], starts)
                self.c[head] = self.c[tail]
            self._event("duplicates", "dropped", live[gone], msg)
            drop[live[gone]] = True
        self.dead |= drop
        self._compact()
