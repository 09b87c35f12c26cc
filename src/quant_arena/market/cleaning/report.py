"""What a cleaning run hands back: :class:`CleanResult`, the quarantine table, the per-rule report
and its Markdown rendering."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from quant_arena.market.cleaning.config import QUARANTINE_COLUMNS, REPORT_COLUMNS, RULES
from quant_arena.market.schema import (
    OHLCV_COLUMNS,
)


class CleanResult(NamedTuple):
    """What :func:`clean_ohlcv` returns (a tuple, so Kedro can map it to three outputs)."""

    clean: pd.DataFrame
    quarantine: pd.DataFrame
    report: pd.DataFrame


class ReportTables:
    """The quarantine and report tables of a cleaning run (methods of the engine)."""

    def _quarantine(self) -> pd.DataFrame:
        if not self.q_rid:
            q = pd.DataFrame(
                {
                    c: pd.Series(dtype="float64" if c in OHLCV_COLUMNS else "str")
                    for c in QUARANTINE_COLUMNS
                }
            )
            q["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
            return q
        rid = np.concatenate(self.q_rid)
        sizes = [x.size for x in self.q_rid]
        rank = {r: i for i, r in enumerate(RULES)}
        rule_no = np.repeat(np.array([rank[m[0]] for m in self.q_meta]), sizes)
        action = np.repeat(np.array([m[1] for m in self.q_meta], dtype=object), sizes)
        detail = np.concatenate(
            [
                np.full(s, m[2], dtype=object) if isinstance(m[2], str) else m[2]
                for s, m in zip(sizes, self.q_meta, strict=True)
            ]
        )
        sid = self.sid_raw[rid]
        ts = self.ts_utc_raw[rid]
        order = np.lexsort(
            (rule_no, ts, sid)
        )  # series order is the canonical (symbol, timeframe)
        rid, sid, ts = rid[order], sid[order], ts[order]
        stamps = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC")
        stamps = stamps.where(self.ts_valid_raw[rid], pd.NaT)
        q = pd.DataFrame(
            {
                "symbol": pd.Series(
                    np.array([x for x, _ in self.series], dtype=object)[sid],
                    dtype="str",
                ),
                "timeframe": pd.Series(
                    np.array([x for _, x in self.series], dtype=object)[sid],
                    dtype="str",
                ),
                "timestamp": stamps,
                "rule": pd.Series(
                    np.array(RULES, dtype=object)[rule_no[order]], dtype="str"
                ),
                "action": pd.Series(action[order], dtype="str"),
                "detail": pd.Series(detail[order], dtype="str"),
                **{c: self.orig[c][rid] for c in OHLCV_COLUMNS},
            }
        )
        return q[list(QUARANTINE_COLUMNS)]

    def _report(self, bars_out: np.ndarray, quarantine: pd.DataFrame) -> pd.DataFrame:
        # rules without a summary of their own: name the first quarantined row
        first = quarantine.groupby(["symbol", "timeframe", "rule"], sort=False).first()
        sid_of = {pair: k for k, pair in enumerate(self.series)}
        for (sym, tf, rule), r in first.iterrows():
            k = sid_of[(sym, tf)]
            if (rule, k) not in self.details:
                when = (
                    "?"
                    if pd.isna(r["timestamp"])
                    else r["timestamp"].strftime("%Y-%m-%d %H:%M:%S")
                )
                self._detail(rule, k, f"first at {when}: {r['detail']}")
        rows = []
        for k, (sym, tf) in enumerate(self.series):
            for rule in RULES:
                rows.append(
                    {
                        "symbol": sym,
                        "timeframe": tf,
                        "rule": rule,
                        "enabled": self.cfg.enabled(rule),
                        "count": int(self.counts[(rule, "found")][k]),
                        "dropped": int(self.counts[(rule, "dropped")][k]),
                        "changed": int(self.counts[(rule, "changed")][k]),
                        "flagged": int(self.counts[(rule, "flagged")][k]),
                        "filled": int(self.counts[(rule, "filled")][k]),
                        "bars_in": int(self.bars_in[k]),
                        "bars_out": int(bars_out[k]),
                        "detail": "; ".join(self.details.get((rule, k), [])),
                    }
                )
        rep = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
        for c in ("symbol", "timeframe", "rule", "detail"):
            rep[c] = rep[c].astype("str")
        return rep


def report_to_markdown(report: pd.DataFrame, *, only_found: bool = True) -> str:
    """The data-quality report as a Markdown table, one section per (symbol, timeframe).

    Args:
        report: the ``report`` frame of :func:`clean_ohlcv`.
        only_found: leave out rules that found nothing.
    """
    lines = ["# Data-quality report", ""]
    for (sym, tf), grp in report.groupby(["symbol", "timeframe"], sort=True):
        bars_in, bars_out = int(grp["bars_in"].iloc[0]), int(grp["bars_out"].iloc[0])
        lines += [f"## {sym} {tf}: {bars_in} bars in, {bars_out} bars out", ""]
        rows = grp[(grp["count"] > 0) | (grp["detail"] != "")] if only_found else grp
        if rows.empty:
            lines += ["No quirks found.", ""]
            continue
        lines += [
            "| rule | count | dropped | changed | flagged | filled | detail |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for r in rows.itertuples(index=False):
            detail = str(r.detail).replace("|", "\\|")
            lines.append(
                f"| {r.rule}{'' if r.enabled else ' (off)'} | {r.count} | {r.dropped} | {r.changed} | "
                f"{r.flagged} | {r.filled} | {detail} |"
            )
        lines.append("")
    return "\n".join(lines)
