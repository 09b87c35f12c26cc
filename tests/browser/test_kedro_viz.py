"""kedro-viz a person can read, checked in headless Chromium.

The site is built once per module by ``kedro viz build`` in a throw-away copy of the project
(``KEDRO_ENV=ci``: 2 folds, 2 agents, 1 seed), served from a local folder and opened in
Chromium. The default view of ``walk_forward`` shows the data chain, the folds inside one
collapsed ``walk_forward`` box, the fan-in through one ``fold_results`` dataset per fold (not
every fold's artifacts), the summary and the report; expanding the box shows one box per fold
namespace; the catalog's layers are drawn and the tags are offered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._project import copy_project
from tests.browser._serve import serve_directory
from tests.browser.conftest import chromium_or_skip

N_FOLDS = 2  # conf/ci/parameters_walk_forward.yml
LAYERS = [
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
]
KEY_DATASETS = [
    "market_features",
    *[f"walk_forward.fold_{i}.fold_results" for i in range(N_FOLDS)],
    "walk_forward_oos_returns_table",
    "walk_forward_summary_report",
    "leaderboard_report",
    "leaderboard_html",
]
NODES_JS = "() => [...document.querySelectorAll('g.pipeline-node')].map(n => [n.dataset.nodeType, n.dataset.nodeFullname])"
#: kedro-viz's saved settings: no feature-tour pop-up over the graph
NO_TOUR = "localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}));"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``kedro viz build`` of a copy of the project (conf/ci), once per module: its ``build`` folder."""
    chromium_or_skip()  # before the work, not after it
    project = copy_project(tmp_path_factory.mktemp("viz-project"), raw=False)
    env = {
        **os.environ,
        "KEDRO_ENV": "ci",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "MPLBACKEND": "Agg",
    }
    done = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (
        "circular dependency detected among layers" not in done.stdout + done.stderr
    ), "a pipeline's layers are circular"
    return project / "build"


def _api(site: Path, pipeline: str) -> dict:
    return json.loads((site / "api" / "pipelines" / pipeline).read_text())


def test_the_built_graph_has_fold_namespaces_layers_tags_and_a_narrow_fan_in(site):
    graph = _api(site, "walk_forward")
    assert graph["layers"] == LAYERS
    assert {t["id"] for t in graph["tags"]} >= {
        "data",
        "fold",
        "train",
        "evaluate",
        "summary",
        "report",
    }
    assert {f"walk_forward.fold_{i}" for i in range(N_FOLDS)} <= set(
        graph["modular_pipelines"]
    )
    by_id = {n["id"]: n for n in graph["nodes"]}
    stitch = next(n["id"] for n in graph["nodes"] if n["name"] == "stitch_walk_forward")
    into = sorted(
        by_id[e["source"]]["name"]
        for e in graph["edges"]
        if e["target"] == stitch and by_id[e["source"]]["type"] == "data"
    )
    assert into == [f"walk_forward.fold_{i}.fold_results" for i in range(N_FOLDS)]
    layer = {n["name"]: n.get("layer") for n in graph["nodes"] if n["type"] == "data"}
    assert (
        layer["market_features"] == "feature"
        and layer["walk_forward_oos_returns_table"] == "model_output"
    )
    assert (
        layer["leaderboard_html"] == "reporting" and layer["clean_ohlcv"] == "primary"
    )
    for name in ("walk_forward", "report", "data", "retrain", "tune"):
        assert _api(site, name)["layers"], f"no layers drawn for {name}"


def test_the_default_view_of_walk_forward_is_the_chain_the_fold_boxes_and_the_report(
    site, page, screenshot
):
    page.add_init_script(NO_TOUR)
    with serve_directory(site) as url:
        page.goto(url)
        page.wait_for_selector(
            'g.pipeline-node[data-node-fullname="stitch_walk_forward"]'
        )
        # every registered pipeline is offered in the pipeline menu
        offered = page.eval_on_selector_all(
            ".pipeline-list .menu-option__content", "els => els.map(e => e.title)"
        )
        assert {
            "__default__",
            "walk_forward",
            "data",
            "report",
            "train_rl",
            "tune",
            "retrain",
            "paper",
        } <= set(offered)
        shown = page.evaluate(NODES_JS)
        names = {name for _, name in shown}
        assert [
            "modularPipeline",
            "walk_forward",
        ] in shown  # the folds, collapsed into one box
        assert set(KEY_DATASETS) <= names, sorted(names)
        assert {
            "ingest_ohlcv",
            "clean_bars",
            "build_market_features",
            "stitch_walk_forward",
            "summarise_walk_forward",
            "render_leaderboard",
        } <= names
        # the fan-in is the fold results, not every fold's artifacts
        assert not [
            n
            for n in names
            if n.endswith(("_evaluation_artifact", "_training_artifact"))
        ], sorted(names)
        assert len(shown) <= 60, f"{len(shown)} nodes in the default view"
        layers = page.eval_on_selector_all(
            ".pipeline-layer-name", "els => els.map(e => e.textContent)"
        )
        assert {"feature", "model_output"} <= set(layers), layers

        # one click opens the walk_forward box: one box per fold namespace
        page.click(
            'g.pipeline-node--modularPipeline[data-node-fullname="walk_forward"]'
        )
        page.wait_for_selector(
            f'g.pipeline-node[data-node-fullname="walk_forward.fold_{N_FOLDS - 1}"]'
        )
        shown = page.evaluate(NODES_JS)
        folds = sorted(
            name
            for kind, name in shown
            if kind == "modularPipeline" and name.startswith("walk_forward.")
        )
        assert folds == [f"walk_forward.fold_{i}" for i in range(N_FOLDS)]
        assert {f"walk_forward.fold_{i}.fold_results" for i in range(N_FOLDS)} <= {
            name for _, name in shown
        }
        page.wait_for_timeout(800)  # the layout's transition
        screenshot(page, "kedro_viz_walk_forward.png")
