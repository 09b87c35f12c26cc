"""Readers of a cleaning result for the hand-valued rule tests: one rule's report row, the
expected counts, and the quarantine rows of a rule."""

from __future__ import annotations


def rep(res, rule: str, symbol: str = "X") -> dict:
    r = res.report[(res.report["rule"] == rule) & (res.report["symbol"] == symbol)]
    assert len(r) == 1
    r = r.iloc[0]
    return {k: r[k] for k in ("count", "dropped", "changed", "flagged", "detail")}


def counts(dropped=0, changed=0, flagged=0, count=None, detail="") -> dict:
    return {
        "count": dropped + changed + flagged if count is None else count,
        "dropped": dropped,
        "changed": changed,
        "flagged": flagged,
        "detail": detail,
    }


def quar(res, rule: str) -> list[tuple]:
    q = res.quarantine[res.quarantine["rule"] == rule]
    return [(r.symbol, r.timestamp, r.action, r.detail) for r in q.itertuples()]
