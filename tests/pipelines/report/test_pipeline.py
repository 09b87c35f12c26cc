"""The report pipeline on an in-memory catalog fed with synthetic walk-forward results, and once
through the project's real catalog entries (files in a temporary folder)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from quant_arena.hooks import ParameterError
from quant_arena.pipelines.report import create_pipeline
from quant_arena.pipelines.report.nodes import make_tearsheets
from quant_arena.reporting.config import ReportConfig
from tests.reporting.synthetic import make_walk_forward_results

ROOT = Path(__file__).resolve().parents[3]
INPUTS = {
    "walk_forward_oos_returns_table",
    "walk_forward_summary_report",
    "walk_forward_trades_table",
    "walk_forward_fold_metrics_report",
    "walk_forward_overfitting_report",
    "walk_forward_montecarlo_report",
    "walk_forward_stress_report",
    "walk_forward_did_it_learn_report",
    "walk_forward_learning_curve_report",
}
OUTPUTS = {
    "leaderboard_report",
    "leaderboard_markdown",
    "leaderboard_html",
    "equity_curves_plot",
    "drawdowns_plot",
    "sharpe_heatmap_plot",
    "return_distribution_plot",
    "learning_curves_plot",
    "tearsheets",
    "tearsheet_index_html",
}
STRATEGIES = ["buy_and_hold", "do_nothing", "momentum", "ppo_mlp", "sac_tcn"]


class KeptDataset(MemoryDataset):
    """A MemoryDataset the runner cannot release, so outputs can be inspected."""

    def _release(self) -> None:
        pass


def _fake_render(series, benchmark, **kwargs) -> str:
    """Stands in for QuantStats (15 s a page; the real page is tested in tests/reporting)."""
    against = kwargs.get("benchmark_name") or "none"
    return f"<html><h1>{kwargs['strategy_name']} vs {against}</h1>{len(series)} days</html>"


@pytest.fixture(scope="module")
def results() -> dict[str, pd.DataFrame]:
    return make_walk_forward_results()


@pytest.fixture(scope="module")
def params() -> dict:
    params = yaml.safe_load((ROOT / "conf" / "base" / "parameters_report.yml").read_text())["report"]
    params["bootstrap"]["n"] = 300  # fewer resamples keep the test quick
    return params


def _run(results, params, monkeypatch, nodes: tuple[str, ...] = ()) -> DataCatalog:
    monkeypatch.setattr("quant_arena.reporting.tearsheets.render_tearsheet", _fake_render)
    catalog = DataCatalog({
        **{name: MemoryDataset(results[name]) for name in INPUTS},
        "params:report": MemoryDataset(params),
        **{name: KeptDataset() for name in OUTPUTS},
    })
    pipeline = create_pipeline()
    SequentialRunner().run(pipeline.only_nodes(*nodes) if nodes else pipeline, catalog)
    return catalog


@pytest.fixture(scope="module")
def run(results, params):
    with pytest.MonkeyPatch.context() as mp:
        return _run(results, params, mp)


def test_reads_only_stored_walk_forward_results():
    pipeline = create_pipeline()
    assert pipeline.inputs() == INPUTS | {"params:report"}  # no model, no market data: nothing retrains
    assert pipeline.all_outputs() == OUTPUTS
    assert all("report" in node.tags for node in pipeline.nodes)


def test_leaderboard_outputs(run):
    board = run.load("leaderboard_report")
    assert list(board["strategy"]) == ["ppo_mlp", "do_nothing", "buy_and_hold", "momentum", "sac_tcn"]
    assert board.set_index("strategy").loc["ppo_mlp", "beats_benchmark"] == "yes"
    md, page = run.load("leaderboard_markdown"), run.load("leaderboard_html")
    for name in STRATEGIES:
        assert name in md and f"<td>{name}</td>" in page
    assert "300 stationary block resamples" in md
    assert page.count("data:image/png;base64,") == 2  # the equity curves and the learning curves are embedded
    assert "<h2>Did it learn?</h2>" in page and "## Did it learn?" in md and "## Learning curves" in md
    assert "http://" not in page and "https://" not in page


def test_plots_are_figures(run):
    for name in ("equity_curves_plot", "drawdowns_plot", "sharpe_heatmap_plot", "return_distribution_plot", "learning_curves_plot"):
        assert isinstance(run.load(name), Figure), name
    assert [line.get_label().split(" ")[0] for line in run.load("equity_curves_plot").axes[0].lines] == list(
        run.load("leaderboard_report")["strategy"]
    )


def test_tear_sheets_for_every_strategy_and_an_index(run):
    pages = run.load("tearsheets")
    assert sorted(pages) == STRATEGIES
    assert pages["ppo_mlp"].startswith("<html><h1>ppo_mlp vs buy_and_hold</h1>")
    assert "buy_and_hold vs none" in pages["buy_and_hold"]
    index = run.load("tearsheet_index_html")
    for key in STRATEGIES:
        assert f'href="../../tearsheets/{key}.html"' in index


def test_same_results_same_report(run, results, params, monkeypatch):
    again = _run(results, params, monkeypatch, nodes=("build_leaderboard", "render_leaderboard", "build_tearsheets"))
    for name in ("leaderboard_markdown", "leaderboard_html", "tearsheet_index_html"):
        assert again.load(name) == run.load(name), name
    pd.testing.assert_frame_equal(again.load("leaderboard_report"), run.load("leaderboard_report"))


def test_tear_sheets_are_logged_to_an_active_mlflow_run(results, params, monkeypatch):
    logged: dict[str, object] = {}

    def log_artifacts(folder, artifact_path=None):
        logged["path"] = artifact_path
        logged["files"] = {p.name: p.read_text() for p in Path(folder).iterdir()}

    # a stand-in for the mlflow module kedro-mlflow would have imported (the real one takes ~10 s)
    mlflow = types.SimpleNamespace(active_run=lambda: None, log_artifacts=log_artifacts)
    monkeypatch.setitem(sys.modules, "mlflow", mlflow)
    monkeypatch.setattr("quant_arena.reporting.tearsheets.render_tearsheet", _fake_render)
    make_tearsheets(results["walk_forward_oos_returns_table"], {**params, "tearsheets": ["momentum"]})
    assert logged == {}  # no run, nothing logged
    mlflow.active_run = lambda: object()
    pages, _ = make_tearsheets(results["walk_forward_oos_returns_table"], {**params, "tearsheets": ["momentum", "ppo_mlp"]})
    assert logged["path"] == "reports/tearsheets"
    assert sorted(logged["files"]) == ["index.html", "momentum.html", "ppo_mlp.html"]
    assert logged["files"]["ppo_mlp.html"] == pages["ppo_mlp"]
    assert 'href="momentum.html"' in logged["files"]["index.html"]  # links that work inside the run


def test_parameters_file_is_valid_and_bad_values_name_the_parameter(params, results):
    config = ReportConfig.model_validate(yaml.safe_load((ROOT / "conf" / "base" / "parameters_report.yml").read_text())["report"])
    assert config.benchmark == "buy_and_hold" and config.tearsheets == "all" and config.tearsheet_seed == "median"
    oos = results["walk_forward_oos_returns_table"]
    with pytest.raises(ParameterError, match=r"report\.bootstrap\.n"):
        make_tearsheets(oos, {**params, "bootstrap": {"n": 5}})
    with pytest.raises(ParameterError, match=r"report\.tearsheet_seed"):
        make_tearsheets(oos, {**params, "tearsheet_seed": "best"})
    with pytest.raises(ParameterError, match=r"report\.timeframe"):
        make_tearsheets(oos, {**params, "timeframe": "1x"})


def _project_catalog(root: Path) -> DataCatalog:
    """The project's catalog entries the report uses (relative paths resolve under ``root``)."""
    from kedro.config import OmegaConfigLoader

    from quant_arena.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "base_env": "base", "default_run_env": "base"})
    config = loader["catalog"]  # globals resolved (data_root: data, relative to the cwd)
    used = ["{name}_table", "{name}_report", "{name}_plot", "{name}_markdown", "{name}_html", "tearsheets"]
    return DataCatalog.from_config({k: config[k] for k in used})


def test_regenerates_from_files_through_the_project_catalog(results, params, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("quant_arena.reporting.tearsheets.render_tearsheet", _fake_render)
    stored = _project_catalog(tmp_path)
    for name in INPUTS:  # what walk_forward would have stored
        stored.save(name, results[name])
    catalog = _project_catalog(tmp_path)
    catalog["params:report"] = MemoryDataset({**params, "tearsheets": ["ppo_mlp", "buy_and_hold"]})
    plots = ["equity_curves_plot", "drawdowns_plot", "sharpe_heatmap_plot", "return_distribution_plot"]
    assert {type(catalog.get(name)).__name__ for name in plots} == {"MatplotlibDataset"}
    # the figures' nodes are skipped here: saving four PNGs takes ~15 s on a busy 2-core machine
    nodes = ("build_leaderboard", "render_leaderboard", "build_tearsheets")
    SequentialRunner().run(create_pipeline().only_nodes(*nodes), catalog)
    data = tmp_path / "data"
    assert sorted(p.name for p in (data / "08_reporting" / "tearsheets").iterdir()) == ["buy_and_hold.html", "ppo_mlp.html"]
    for name in ("leaderboard.md", "leaderboard.html", "tearsheet_index.html", "leaderboard_report.parquet"):
        versions = list((data / "08_reporting" / name).iterdir())
        assert len(versions) == 1 and (versions[0] / name).stat().st_size > 0, name  # versioned
    index = next((data / "08_reporting" / "tearsheet_index.html").iterdir()) / "tearsheet_index.html"
    assert (index.parent / "../../tearsheets/ppo_mlp.html").resolve().is_file()  # the index's links resolve
    board = pd.read_parquet(next((data / "08_reporting" / "leaderboard_report.parquet").iterdir()) / "leaderboard_report.parquet")
    assert board["strategy"].iloc[0] == "ppo_mlp"
