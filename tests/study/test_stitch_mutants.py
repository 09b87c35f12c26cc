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

from quant_arena.evaluation.did_it_learn import stitch_references
from quant_arena.evaluation.metrics import METRIC_NAMES
from quant_arena.evaluation.stress_eval import stress_episodes
from quant_arena.study.walk_forward import WalkForwardConfig
from quant_arena.study.walk_forward.fold import FoldData
from quant_arena.study.walk_forward.stitch import OOS_COLUMNS, fold_metrics, stitch_oos

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


# --------------------------------------------------------------------------- stress, trades, references


class _Stress:
    """A stress backtest stand-in: its equity curve and liquidation flags."""

    def __init__(self, equity, liquidated):
        self.equity = np.asarray(equity, dtype=float)
        self.columns = {"liquidated": list(liquidated)}

    def __len__(self) -> int:
        return len(self.equity)


STRESS = {"reference": "level", "ruin_level": 0.3, "horizon": 1}


def _stress_inputs():
    """Fold 5 (3 bars): hold's stress curve has 6 bars, ppo#2's 5, the scenario 4 labels: 4 are
    read. Fold 7: the scenario has 4 labels, the curves 3. The agent's own ``scenario`` is a
    decoy (only a baseline evaluation carries the fold's). Fold 5's crash starts below hold's
    peak (``level`` and ``peak`` references differ) and takes ppo#2 to 0.45 of its level
    (survived at ruin level 0.3, not at the default 0.5)."""
    folds = [
        {"index": 5, "periods_per_year": 10.0},
        {"index": 7, "periods_per_year": 10.0},
    ]
    hold0 = _Stress(
        [1.2, 1.0, 0.5, 0.95, 1.3, 9.0], [False, False, False, True, False, False]
    )
    ppo0 = _Stress([1.0, 1.0, 0.45, 0.6, 1.01], [False] * 5)
    hold1 = _Stress([1.0, 0.6, 1.2], [False] * 3)
    ppo1 = _Stress([1.0, 0.95, 0.9], [False] * 3)
    evs = [
        [
            {
                "kind": "baseline",
                "scenario": ["", "", "crash", "crash"],
                "results": {
                    "hold": {
                        "test": _Res(T, [0.1, 0.0, 0.0], [1, 1, 1]),
                        "stress": hold0,
                    }
                },
            },
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 2,
                "scenario": ["thin"] * 5,
                "results": {
                    "test": _Res(T, [0.0, 0.1, 0.0], [0, 1, 1]),
                    "stress": ppo0,
                },
            },
        ],
        [
            {"kind": "baseline", "scenario": None, "results": {}},
            {
                "kind": "baseline",
                "scenario": ["thin", "thin", "", "x"],
                "results": {
                    "hold": {
                        "test": _Res(T, [0.0, 0.0, 0.0], [0, 0, 0]),
                        "stress": hold1,
                    }
                },
            },
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 2,
                "results": {
                    "test": _Res(T, [0.0, 0.0, 0.0], [0, 0, 0]),
                    "stress": ppo1,
                },
            },
        ],
    ]
    return folds, evs, (hold0, ppo0, hold1, ppo1)


def _expected_episodes(curves, scenario, index) -> pd.DataFrame:
    n = len(scenario)
    ep = stress_episodes(
        {k: c.equity[:n] for k, c in curves.items()},
        scenario[:n],
        liquidated={
            k: np.asarray(c.columns["liquidated"][:n], dtype=bool)
            for k, c in curves.items()
        },
        initial=1.0,
        **STRESS,
    )
    ep.insert(0, "fold", np.int64(index))
    return ep


def test_stress_episodes_per_fold_on_the_common_bars_with_the_configured_rules() -> (
    None
):
    folds, evs, (hold0, ppo0, hold1, ppo1) = _stress_inputs()
    config = WalkForwardConfig.model_validate({"stress": STRESS})
    eps = stitch_oos(folds, evs, config)["stress_episodes"]
    expected = pd.concat(
        [
            _expected_episodes(
                {"baseline|hold|-1": hold0, "agent|ppo|2": ppo0},
                ["", "", "crash", "crash"],
                5,
            ),
            _expected_episodes(
                {"baseline|hold|-1": hold1, "agent|ppo|2": ppo1},
                ["thin", "thin", ""],
                7,
            ),
        ],
        ignore_index=True,
    )
    split = expected["strategy"].str.split("|", expand=True)
    expected["kind"], expected["strategy"], expected["seed"] = (
        split[0],
        split[1],
        split[2].astype(np.int64),
    )
    pd.testing.assert_frame_equal(eps, expected)
    assert eps.columns.tolist() == [
        "fold",
        "strategy",
        "scenario",
        "start",
        "end",
        "n_bars",
        "reference",
        "survived",
        "drawdown",
        "recovery_bars",
        "kind",
        "seed",
    ]
    assert eps[["fold", "strategy", "kind", "seed", "scenario"]].values.tolist() == [
        [5, "hold", "baseline", -1, "crash"],
        [5, "ppo", "agent", 2, "crash"],
        [7, "hold", "baseline", -1, "thin"],
        [7, "ppo", "agent", 2, "thin"],
    ]
    # hold was liquidated inside the crash: not survived; the rules are the configured ones
    assert eps["survived"].tolist() == [False, True, True, True]
    for other in ({"reference": "peak"}, {"ruin_level": 0.5}):  # each setting shows
        changed = stitch_oos(
            folds,
            evs,
            WalkForwardConfig.model_validate({"stress": {**STRESS, **other}}),
        )
        assert not changed["stress_episodes"][["survived", "drawdown"]].equals(
            eps[["survived", "drawdown"]]
        ), other
    default = stitch_oos(folds, evs, WalkForwardConfig())["stress_episodes"]
    assert not default[["drawdown", "recovery_bars"]].equals(
        eps[["drawdown", "recovery_bars"]]
    )
    assert eps["seed"].dtype == np.int64 and eps["fold"].dtype == np.int64


def test_no_scenario_or_no_stress_curve_gives_no_episodes() -> None:
    folds, evs, _ = _stress_inputs()
    evs[0][0]["scenario"] = None
    evs[1][1]["scenario"] = None
    assert stitch_oos(folds, evs, WalkForwardConfig())["stress_episodes"].empty
    folds, evs, _ = _stress_inputs()
    for fold in evs:
        for ev in fold:
            for per in (
                [ev["results"]] if ev["kind"] == "agent" else ev["results"].values()
            ):
                if "stress" in per:
                    per["stress"] = _Stress([], [])
    assert stitch_oos(folds, evs, WalkForwardConfig())["stress_episodes"].empty


def test_the_trades_table_columns_and_the_agents_offsets() -> None:
    folds = [
        {"index": 0, "periods_per_year": 10.0},
        {"index": 1, "periods_per_year": 10.0},
    ]
    evs = [
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {"test": _Res(T[:2], [0.0, 0.1], [1, 1], [(0, 1, 1.0)])},
            }
        ],
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {"test": _Res(T[2:], [0.2], [1], [(0, 0, 3.0)])},
            },
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 2,
                "results": {"test": _Res(T[2:], [0.3], [1], [(0, 0, 4.0)])},
            },
        ],
    ]
    tr = stitch_oos(folds, evs, WalkForwardConfig())["trades"]
    assert tr.columns.tolist() == [
        "strategy",
        "kind",
        "seed",
        "fold",
        "entry_index",
        "exit_index",
        "pnl",
        "entry_timestamp",
        "exit_timestamp",
        "oos_entry_index",
        "oos_exit_index",
    ]
    assert tr[
        ["seed", "fold", "oos_entry_index", "oos_exit_index", "pnl"]
    ].values.tolist() == [
        [1, 0, 0, 1, 1.0],
        [1, 1, 2, 2, 3.0],
        [2, 1, 0, 0, 4.0],
    ]
    assert [
        str(tr[c].dtype) for c in ("seed", "fold", "oos_entry_index", "oos_exit_index")
    ] == ["int64"] * 4
    assert tr["entry_timestamp"].tolist() == [T[0], T[2], T[2]]


def test_without_trades_the_table_has_the_run_columns_only() -> None:
    folds = [{"index": 0, "periods_per_year": 10.0}]
    evs = [
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {"test": _Res(T[:2], [0.0, 0.1], [1, 1])},
            }
        ]
    ]
    tr = stitch_oos(folds, evs, WalkForwardConfig())["trades"]
    assert tr.columns.tolist() == ["strategy", "kind", "seed", "fold"] and tr.empty


def test_references_are_stitched_with_each_fold_index() -> None:
    folds = [
        {"index": 4, "periods_per_year": 10.0},
        {"index": 9, "periods_per_year": 20.0},
    ]
    evs = [
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {"test": _Res(T[:2], [0.0, 0.1], [1, 1])},
                "untrained": _Res(T[:2], [0.01, 0.02], [1, 0]),
            }
        ],
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {"test": _Res(T[2:], [0.2], [1])},
                "untrained": _Res(T[2:], [0.03], [-1]),
            }
        ],
    ]
    refs = stitch_oos(folds, evs, WalkForwardConfig())["references"]
    pd.testing.assert_frame_equal(refs, stitch_references([(4, evs[0]), (9, evs[1])]))
    assert refs["fold"].tolist() == [4, 4, 9]


def test_fold_data_and_mappings_give_the_same_fold_and_annualisation() -> None:
    folds, evs = _inputs()
    data = [
        FoldData(f["index"] + 3, 0, None, pd.DataFrame(), f["periods_per_year"] * 2)
        for f in folds
    ]
    out = stitch_oos(data, evs, WalkForwardConfig())
    fm = out["fold_metrics"]
    assert fm["fold"].tolist() == [3, 3, 4]
    assert fm[METRIC_NAMES[0]].tolist() == [200.0, 200.0, 400.0]
    assert out["oos_returns"]["fold"].tolist() == [3, 3, 3, 3, 4]
    assert fold_metrics(data[1], evs[1])[["fold", METRIC_NAMES[0]]].values.tolist() == [
        [4, 400.0]
    ]


def test_naive_timestamps_are_read_as_utc_and_float_bar_indices_as_bars() -> None:
    naive = T.tz_localize(None).to_numpy()
    folds = [{"index": i, "periods_per_year": 10.0} for i in range(3)]
    evs = [
        [
            {
                "kind": "agent",
                "strategy": "ppo",
                "seed": 1,
                "results": {
                    "test": _Res(naive[i : i + 1], [0.1], [1], [(0.0, 0.0, float(i))]),
                    "validation": _Res(naive[i : i + 1], [0.0], [0]),
                },
            }
        ]
        for i in range(3)
    ]
    out = stitch_oos(folds, evs, WalkForwardConfig())
    assert out["oos_returns"]["timestamp"].tolist() == list(T)
    tr = out["trades"]
    assert tr["entry_timestamp"].tolist() == list(T) and tr[
        "exit_timestamp"
    ].tolist() == list(T)
    # the third fold's trade sits after the first two folds' bars
    assert tr["oos_entry_index"].tolist() == [0, 1, 2] and tr[
        "oos_exit_index"
    ].tolist() == [0, 1, 2]
    assert [str(tr[c].dtype) for c in ("oos_entry_index", "oos_exit_index")] == [
        "int64",
        "int64",
    ]
    fm = out["fold_metrics"]
    assert fm["first_timestamp"].tolist() == list(T) and fm[
        "last_timestamp"
    ].tolist() == list(T)
    # one row per fold and trade, numbered afresh
    assert (tr.index.tolist(), fm.index.tolist()) == ([0, 1, 2], [0, 1, 2])


def test_fold_metrics_skips_a_run_without_the_window_and_keeps_the_columns() -> None:
    fold = {"index": 2, "periods_per_year": 10.0}
    evs = [
        {
            "kind": "agent",
            "strategy": "a",
            "seed": 0,
            "results": {"test": _Res(T[:1], [0.1], [1])},
        },
        {
            "kind": "agent",
            "strategy": "b",
            "seed": 0,
            "results": {"validation": _Res(T[:2], [0.1, 0.0], [1, 1])},
        },
    ]
    got = fold_metrics(fold, evs, "validation")
    assert got[["fold", "strategy", "seed"]].values.tolist() == [[2, "b", 0]]
    empty = fold_metrics(fold, evs[:1], "validation")
    assert empty.empty
    assert empty.columns.tolist() == [
        "fold",
        "strategy",
        "kind",
        "seed",
        "first_timestamp",
        "last_timestamp",
        *METRIC_NAMES,
    ]
