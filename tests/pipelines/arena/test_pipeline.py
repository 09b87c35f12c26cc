"""The arena pipeline through Kedro on an in-memory catalog: a tiny synthetic market, two folds,
one tiny PPO league agent (self-play, curriculum) and its plain counterpart, one seed, the
baselines; both tables (league table, solo leaderboard) and the report come out."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.market import DataError
from quant_arena.pipelines.arena.nodes import (
    SUMMARY_KEYS,
    league_seed,
    prepare_fold,
    summarize_league,
)
from quant_arena.pipelines.arena.pipeline import SUMMARY_OUTPUTS, create_pipeline
from quant_arena.pipelines.parameters import ParameterError, validate_parameters
from quant_arena.study.arena import ArenaConfig
from tests.pipelines.walk_forward import _tiny

torch.set_num_threads(1)

PARAMS = _tiny.params(agents=("ppo_mlp",), seeds=(0,))
PARAMS.update(
    league={"snapshot_every": 32, "n_opponents": 2},
    curriculum={
        "levels": [
            {"fee_mult": 0.0, "opponent_strength": 0.0},
            {"fee_mult": 1.0, "opponent_strength": 1.0},
        ],
        "thresholds": [0.0],
    },
    matches={
        "n_matches": 3,
        "length": 40,
        "n_bootstrap": 20,
        "fixed_players": ["flat", "long", "short"],
    },
    plain_counterparts=True,
)
PARAMS.pop("stress")


class Kept(MemoryDataset):
    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def run():
    pipe = create_pipeline(ArenaConfig.model_validate(PARAMS), with_data=False)
    outputs = set().union(*(set(n.outputs) for n in pipe.nodes))
    catalog = DataCatalog(
        {
            "market_features": MemoryDataset(_tiny.market_features()),
            "params:arena": MemoryDataset(PARAMS),
            "params:baselines": MemoryDataset(_tiny.BASELINES),
            **{n: Kept(copy_mode="assign") for n in outputs},
        }
    )
    SequentialRunner().run(pipe, catalog)
    return catalog


def test_one_namespace_per_fold_and_one_league_node_per_seed():
    names = {
        n.name
        for n in create_pipeline(
            ArenaConfig.model_validate(PARAMS), with_data=False
        ).nodes
    }
    assert names == {
        f"arena.fold_{i}.{x}"
        for i in range(2)
        for x in ("prepare_fold", "evaluate_baselines", "league_seed_0")
    } | {"summarize_arena"}
    assert set(SUMMARY_OUTPUTS) <= {
        o
        for n in create_pipeline(
            ArenaConfig.model_validate(PARAMS), with_data=False
        ).nodes
        for o in n.outputs
    }


def test_league_table_holds_every_player_with_its_uncertainty(run):
    table = run.load("arena_league_table_report")
    assert set(table["player"]) == {"ppo_mlp", "ppo_mlp_plain", "flat", "long", "short"}
    assert (
        dict(zip(table["player"], table["kind"], strict=True))["ppo_mlp_plain"]
        == "plain"
    )
    assert (table["rating_std"] >= 0).all() and (
        table["rating_lo"] <= table["rating_hi"]
    ).all()
    assert table["rating"].is_monotonic_decreasing
    assert (table["n_matches"] == 2 * 3).all()  # 2 folds x 1 seed x 3 matches
    matches = run.load("arena_matches_report")
    assert matches.groupby("match")["relative_return"].sum().abs().max() < 1e-12
    t0 = {i: run.load(f"arena.fold_{i}.fold_artifact")["fold"].test for i in range(2)}
    for _, r in matches.iterrows():  # every match is played on the fold's TEST bars
        assert t0[r["fold"]].start <= r["start"] and r["end"] <= t0[r["fold"]].stop


def test_solo_leaderboard_puts_agents_next_to_the_baselines(run):
    board = run.load("arena_solo_leaderboard_report")
    assert set(board["strategy"]) == {"ppo_mlp", "ppo_mlp_plain", *_tiny.BASELINES}
    runs = run.load("arena_solo_runs_report")
    assert len(runs[runs["kind"] == "agent"]) == 2 and len(
        runs[runs["kind"] == "baseline"]
    ) == 2 * len(_tiny.BASELINES)
    bh = runs[runs["strategy"] == "buy_and_hold"]
    row = board.set_index("strategy").loc["buy_and_hold"]
    assert row["sharpe_mean"] == pytest.approx(bh["sharpe"].mean())
    assert board["sharpe_mean"].is_monotonic_decreasing
    # the stitched record (2 test windows, seed-mean) with its CI, PSR and DSR; the PBO over the rows
    tests = [run.load(f"arena.fold_{i}.fold_artifact")["fold"].test for i in range(2)]
    assert (board["n_bars"] == sum(w.stop - w.start - 1 for w in tests)).all()
    finite = board[board["stitched_sharpe"].notna() & (board["stitched_sharpe"] != 0)]
    assert len(finite) >= 3
    assert (
        (finite["sharpe_ci_low"] <= finite["stitched_sharpe"])
        & (finite["stitched_sharpe"] <= finite["sharpe_ci_high"])
    ).all()
    assert (
        board["psr"].between(0, 1).all()
        and board["dsr"].between(0, 1).all()
        and (board["dsr"] <= board["psr"] + 1e-12).all()
    )
    pbo = run.load("arena_solo_overfitting_report")
    assert 0.0 <= pbo["pbo"].iloc[0] <= 1.0 and pbo["n_strategies"].iloc[0] == len(
        board
    )
    assert not {"returns", "positions", "timestamps"} & set(runs.columns)


def test_every_solo_run_has_its_monte_carlo_and_its_metrics_per_regime(run):
    from quant_arena.evaluation.montecarlo import bootstrap_returns
    from quant_arena.evaluation.regimes import label_regimes, metrics_by_regime
    from quant_arena.study.arena import ArenaConfig

    config = ArenaConfig.model_validate(PARAMS)
    runs = run.load("arena_solo_runs_report")
    keys = set(runs[["strategy", "kind", "seed"]].itertuples(index=False, name=None))
    mc = run.load("arena_solo_montecarlo_report")
    assert set(mc[["strategy", "kind", "seed"]].itertuples(index=False, name=None)) == keys
    assert "block_bootstrap_stationary" in set(mc["method"]) and (mc["n_paths"] == config.monte_carlo.n_paths).all()
    assert (mc["final_return_worst"] <= mc["final_return_median"]).all()
    # recomputed by hand for buy-and-hold: its two test windows stitched in fold order
    folds = [run.load(f"arena.fold_{i}.baselines_solo_artifact") for i in range(2)]
    bh = [f.set_index("strategy").loc["buy_and_hold"] for f in folds]
    record = np.concatenate([r["returns"] for r in bh])
    boot = bootstrap_returns(record, n_paths=config.monte_carlo.n_paths, seed=config.monte_carlo.seed)
    row = mc[(mc["strategy"] == "buy_and_hold") & (mc["method"] == "block_bootstrap_stationary")].iloc[0]
    assert row["final_return_actual"] == pytest.approx(boot.actual_final_return)
    assert row["final_return_worst"] == pytest.approx(boot.worst_case(config.monte_carlo.alpha)["final_return_worst"])
    # regimes: causal labels of the whole series read at the stitched test bars
    regimes = run.load("arena_solo_regime_report")
    assert set(regimes[["strategy", "kind", "seed"]].itertuples(index=False, name=None)) == keys
    stamps = pd.to_datetime(np.concatenate([r["timestamps"] for r in bh]), utc=True)
    features = _tiny.market_features()
    closes = pd.Series(features["close"].to_numpy(float), index=pd.to_datetime(features["timestamp"], utc=True))
    labels = label_regimes(closes, config.regimes).reindex(stamps).astype(str).to_numpy()
    want = metrics_by_regime(record, labels, float(bh[0]["periods_per_year"]))
    got = regimes[regimes["strategy"] == "buy_and_hold"].set_index("regime")
    for r in want.itertuples():
        assert got.loc[r.regime, "n_bars"] == r.n_bars
        assert got.loc[r.regime, "sharpe"] == pytest.approx(r.sharpe, nan_ok=True)
    assert got["n_bars"].sum() == len(record)
    md = run.load("arena_league_markdown")
    assert "## Monte Carlo" in md and "## Sharpe per market regime" in md


def test_fold_artifacts_of_an_older_version_still_summarise(run, caplog):
    """A resumed run may load league artifacts saved before the solo rows carried positions and
    bar times: the summary still comes out (bootstrap only, no regimes), saying why."""
    inputs = [
        a.drop(columns=["positions", "timestamps"]) if isinstance(a, pd.DataFrame) else
        {**a, "solo": a["solo"].drop(columns=["positions", "timestamps"])}
        for a in _summary_inputs(run)
    ]  # fmt: skip
    out = summarize_league(PARAMS, _tiny.market_features(), *inputs, n_folds=2, n_seeds=1)
    mc = out[SUMMARY_KEYS.index("solo_montecarlo")]
    assert set(mc["method"]) == {"block_bootstrap_stationary"}
    assert out[SUMMARY_KEYS.index("solo_regimes")].empty
    assert "fold artifacts from an older version" in caplog.text
    board = out[SUMMARY_KEYS.index("solo_leaderboard")]
    pd.testing.assert_frame_equal(board, run.load("arena_solo_leaderboard_report"))


def test_a_stress_block_is_refused_naming_it():
    with pytest.raises(ValueError, match="stress: the arena runs no stress scenarios"):
        ArenaConfig.model_validate({**PARAMS, "stress": {}})


def test_learning_curve_records_the_curriculum_level_and_the_report_has_both_tables(
    run,
):
    curve = run.load("arena_learning_curve_report")
    league = curve[curve["agent"] == "ppo_mlp"]
    assert len(league) and league["curriculum_level"].isin([0.0, 1.0]).all()
    training = run.load("arena_training_report").set_index(["fold", "agent"])
    assert (training.xs("ppo_mlp", level="agent")["snapshots"] >= 1).all()
    assert (training.xs("ppo_mlp", level="agent")["league_opponents"] == 0).all()
    md = run.load("arena_league_markdown")
    assert (
        "## League table" in md
        and "## Solo leaderboard" in md
        and "ppo_mlp_plain" in md
    )
    assert isinstance(run.load("arena_solo_runs_report"), pd.DataFrame)


def test_a_run_time_change_of_the_seeds_fails_naming_the_parameter(run):
    with pytest.raises(ValueError, match=r"arena.seeds = \[0, 1\] at run time"):
        league_seed(
            pd.DataFrame(),
            {},
            {**PARAMS, "seeds": [0, 1]},
            seed=0,
            built={"n_folds": 2, "seeds": [0]},
        )


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A throw-away MLflow tracking store (SQLite in ``tmp_path``), the previous URI restored after."""
    import mlflow

    before = mlflow.get_tracking_uri()
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "arena_metrics_test"
    )  # not made the active one
    yield mlflow, experiment
    mlflow.set_tracking_uri(before)


def _summary_inputs(run) -> list:
    return [
        run.load(f"arena.fold_{i}.{name}")
        for i in range(2)
        for name in ("baselines_solo_artifact", "league_seed_0_artifact")
    ]


def test_the_summary_logs_the_league_and_the_leaderboard_to_the_active_mlflow_run(
    run, mlflow_store
):
    mlflow, experiment = mlflow_store
    inputs = _summary_inputs(run)
    # without an active run nothing is logged and nothing fails
    assert mlflow.active_run() is None
    features = _tiny.market_features()
    plain = summarize_league(PARAMS, features, *inputs, n_folds=2, n_seeds=1)
    with mlflow.start_run(experiment_id=experiment) as active:
        out = summarize_league(PARAMS, features, *inputs, n_folds=2, n_seeds=1)
    # one run, the one started here: the node starts none of its own
    assert len(mlflow.search_runs([experiment], output_format="list")) == 1
    got = mlflow.MlflowClient().get_run(active.info.run_id).data.metrics
    table = out[SUMMARY_KEYS.index("league_table")].set_index("player")
    board = out[SUMMARY_KEYS.index("solo_leaderboard")].set_index("strategy")
    pd.testing.assert_frame_equal(
        table, plain[SUMMARY_KEYS.index("league_table")].set_index("player")
    )
    want = {}
    # the trained players (league agent, plain counterpart), not the fixed ones
    for player in ("ppo_mlp", "ppo_mlp_plain"):
        for c in ("rating", "rating_std", "wins", "draws", "losses"):
            want[f"arena.league.{player}.{c}"] = float(table.loc[player, c])
        for c in ("sharpe_mean", "sharpe_std", "dsr"):
            want[f"arena.solo.{player}.{c}"] = float(board.loc[player, c])
    for baseline in _tiny.BASELINES:
        want[f"arena.solo.{baseline}.sharpe_mean"] = float(
            board.loc[baseline, "sharpe_mean"]
        )
    want["arena.overfitting.pbo"] = float(
        out[SUMMARY_KEYS.index("solo_overfitting")]["pbo"].iloc[0]
    )
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert table.loc["ppo_mlp", "wins"] + table.loc["ppo_mlp", "losses"] > 0


def _bad(**over) -> dict:
    p = copy.deepcopy(PARAMS)
    p.update(over)
    return p


def test_a_fold_window_the_data_cannot_hold_fails_naming_the_arena_parameters():
    # the fold helpers are walk_forward's: the message names the block the user runs
    folds = {
        **PARAMS["folds"],
        "train": 1300,
    }  # 1400 bars: no room for validation and test
    with pytest.raises(ValueError) as err:
        prepare_fold(_tiny.market_features(), _bad(folds=folds), fold_index=0)
    msg = str(err.value)
    assert msg.startswith(
        "arena.n_folds = 2 but the data gives only 0 fold(s) with arena.folds = "
    )
    assert "lower arena.n_folds in conf/base/parameters_arena.yml" in msg
    assert "walk_forward" not in msg
    with pytest.raises(DataError, match=r"arena\.symbol='ETH/USD' matches no row"):
        prepare_fold(
            _tiny.market_features().assign(symbol="BTC/USD"),
            _bad(symbol="ETH/USD"),
            fold_index=0,
        )


def test_a_bad_agent_or_baseline_fails_before_the_run_naming_the_arena_parameters():
    p = _bad()
    p["agents"][0]["agent"]["seed"] = 7  # the seeds come from arena.seeds
    with pytest.raises(ParameterError) as err:
        validate_parameters({"arena": p}, {"arena"})
    assert (
        "arena.agents[0]: Value error, agents[ppo_mlp].agent.seed: not used (arena.seeds seed every agent)"
        in str(err.value)
    )
    assert "walk_forward" not in str(err.value)
    p = _bad()
    p["agents"][0]["env"] = {"execution": {"taker_fee": 0.0}}
    with pytest.raises(ParameterError, match=r"the same arena\.env\.execution"):
        validate_parameters({"arena": p}, {"arena"})
    with pytest.raises(
        ParameterError, match=r"arena\.baselines: \['nope'\] are not entries"
    ):
        validate_parameters(
            {
                "arena": _bad(baselines=["buy_and_hold", "nope"]),
                "baselines": _tiny.BASELINES,
            },
            {"arena", "baselines"},
        )
    # walk_forward's own messages are unchanged
    w = _tiny.params()
    w["agents"][0]["agent"]["seed"] = 7
    with pytest.raises(
        ParameterError, match=r"not used \(walk_forward\.seeds seed every agent\)"
    ):
        validate_parameters({"walk_forward": w}, {"walk_forward"})
