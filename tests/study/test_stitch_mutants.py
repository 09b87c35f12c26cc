"""stitch_oos on two hand-made folds: the stitched record, its equity, trades, per-fold and
validation rows, valued by hand (written against ``python tools/mutation.py walk_forward_stitch``).

The backtests are stand-ins with the attributes stitch_oos reads; their ``metrics(ppy)`` returns
``ppy + i`` for the i-th metric name, so a row shows which annualisation it was given.

    fold 0 (ppy 100): hold   returns 0.1, -0.5 at t0, t1 (one trade, bars 0 -> 1)
                      ppo#3  returns 0.0, 0.2  at t0, t1
    fold 1 (ppy 200): hold   return  1.0       at t2     (one trade, bar 0 -> 0)

    equity: hold 1.1, 0.55, 1.1 ; ppo#3 1.0, 1.2 ; the second hold trade sits at oos bar 2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.study.walk_forward import WalkForwardConfig
from quant_arena.study.walk_forward.stitch import OOS_COLUMNS, stitch_oos

T = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")


class _Res:
    def __init__(self, ts, returns, positions, trades=()):
        self.timestamps = np.asarray(ts)
        self.returns = np.asarray(returns, dtype=np.float32)
        self.positions = np.asarray(positions, dtype=np.int64)
        self.trades = pd.DataFrame(
            list(trades), columns=["entry_index", "exit_index", "pnl"]
        )

    def __len__(self) -> int:
        return len(self.returns)

    def metrics(self, ppy):
        return {k: ppy + i for i, k in enumerate(METRIC_NAMES)}


def _inputs():
    folds = [
        {"index": 0, "periods_per_year": 100.0},
        {"index": 1, "periods_per_year": 200.0},
    ]
    evs = [
        [
            {
                "kind": "baseline",
                "results": {
                    "hold": {
                        "test": _Res(T[:2], [0.1, -0.5], [1, 1], [(0, 1, 5.0)]),
                        "validation": _Res(T[:1], [0.0], [0]),
                    }
                },
            },
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": "3",
                "validation": {"best_val_sharpe": 0.7},
                "results": {"test": _Res(T[:2], [0.0, 0.2], [0, -1])},
            },
        ],
        [
            {
                "kind": "baseline",
                "results": {"hold": {"test": _Res(T[2:], [1.0], [1], [(0, 0, 2.0)])}},
            },
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 3,
                "results": {"test": _Res([], [], [])},
            },
        ],
    ]
    return folds, evs


def _out():
    # called in each test, not a module fixture: mutmut maps a test to the code its body runs
    return stitch_oos(*_inputs(), WalkForwardConfig())


def test_the_stitched_record_and_its_equity() -> None:
    out = _out()
    oos = out["oos_returns"]
    assert list(oos.columns) == list(OOS_COLUMNS)
    assert oos[["strategy", "kind", "seed", "fold"]].values.tolist() == [
        ["ppo", "agent", 3, 0],
        ["ppo", "agent", 3, 0],
        ["hold", "baseline", -1, 0],
        ["hold", "baseline", -1, 0],
        ["hold", "baseline", -1, 1],
    ]
    assert oos["timestamp"].tolist() == [T[0], T[1], T[0], T[1], T[2]]
    np.testing.assert_allclose(oos["return"], [0.0, 0.2, 0.1, -0.5, 1.0], rtol=1e-6)
    assert oos["position"].tolist() == [0.0, -1.0, 1.0, 1.0, 1.0]
    np.testing.assert_allclose(oos["equity"], [1.0, 1.2, 1.1, 0.55, 1.1], rtol=1e-6)
    assert [str(oos[c].dtype) for c in ("seed", "fold", "return", "position")] == [
        "int64",
        "int64",
        "float64",
        "float64",
    ]


def test_a_total_loss_gives_zero_equity_not_nan() -> None:
    folds, evs = _inputs()
    evs[0][0]["results"]["hold"]["test"] = _Res(T[:2], [-1.0, 0.5], [1, 1])
    oos = stitch_oos(folds, evs, WalkForwardConfig())["oos_returns"]
    hold = oos[oos["strategy"] == "hold"]["equity"].to_numpy()
    assert hold[0] == pytest.approx(0.0, abs=1e-200) and np.isfinite(hold).all()


def test_the_trades_carry_their_run_fold_times_and_oos_bars() -> None:
    out = _out()
    tr = out["trades"]
    assert list(tr.columns[:4]) == ["strategy", "kind", "seed", "fold"]
    assert tr[
        ["strategy", "kind", "seed", "fold", "entry_index", "exit_index", "pnl"]
    ].values.tolist() == [
        ["hold", "baseline", -1, 0, 0, 1, 5.0],
        ["hold", "baseline", -1, 1, 0, 0, 2.0],
    ]
    assert tr["entry_timestamp"].tolist() == [T[0], T[2]] and tr[
        "exit_timestamp"
    ].tolist() == [T[1], T[2]]
    assert tr["oos_entry_index"].tolist() == [0, 2] and tr[
        "oos_exit_index"
    ].tolist() == [1, 2]


def test_the_per_fold_metrics_use_each_fold_annualisation() -> None:
    out = _out()
    fm = out["fold_metrics"]
    assert fm[["fold", "strategy", "kind", "seed"]].values.tolist() == [
        [0, "hold", "baseline", -1],
        [0, "ppo", "agent", 3],
        [1, "hold", "baseline", -1],
    ]
    assert fm["first_timestamp"].tolist() == [T[0], T[0], T[2]] and fm[
        "last_timestamp"
    ].tolist() == [T[1], T[1], T[2]]
    assert fm[METRIC_NAMES[0]].tolist() == [100.0, 100.0, 200.0]
    assert fm[METRIC_NAMES[-1]].tolist() == [100.0 + len(METRIC_NAMES) - 1] * 2 + [
        200.0 + len(METRIC_NAMES) - 1
    ]


def test_the_validation_rows() -> None:
    out = _out()
    val = out["validation"]
    assert list(val.columns) == [
        "fold",
        "strategy",
        "kind",
        "seed",
        "sharpe",
        "total_return",
        "max_drawdown",
        "source",
    ]
    i = {k: 100.0 + n for n, k in enumerate(METRIC_NAMES)}
    rows = val.astype(object).where(val.notna(), None).values.tolist()
    assert rows == [
        [0, "ppo", "agent", 3, 0.7, None, None, "best_validation_evaluation"],
        [
            0,
            "hold",
            "baseline",
            -1,
            i["sharpe"],
            i["total_return"],
            i["max_drawdown"],
            "validation_backtest",
        ],
        [1, "ppo", "agent", 3, None, None, None, "best_validation_evaluation"],
    ]


def test_no_stress_and_no_references_give_empty_tables() -> None:
    out = _out()
    assert out["stress_episodes"].empty and out["references"].empty


def test_mismatched_and_empty_inputs_are_refused() -> None:
    folds, evs = _inputs()
    with pytest.raises(ValueError) as err:
        stitch_oos(folds, evs[:1], WalkForwardConfig())
    assert str(err.value) == "2 folds but 1 lists of evaluations"
    with pytest.raises(ValueError) as err:
        stitch_oos(
            folds[:1],
            [[{"kind": "agent", "strategy": "ppo", "seed": 0, "results": {}}]],
            WalkForwardConfig(),
        )
    assert (
        str(err.value)
        == "walk_forward: nothing was evaluated (no agent and no baseline)"
    )
