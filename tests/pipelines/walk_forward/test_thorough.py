"""The seed zoo keeps working: ``kedro run --pipeline=walk_forward --env thorough`` (conf/thorough:
every algorithm with the mlp extractor plus PPO with each sequence extractor) builds and runs
through the real catalog, on tiny budgets.

The project (pyproject, .telemetry, conf, data/01_raw) is copied to a temporary folder and run as
a ``kedro`` subprocess with ``--env thorough`` ALONE (no KEDRO_ENV): the pipeline must be built
from conf/base + conf/thorough (the zoo's agents), not conf/base's two agents. In the copy,
conf/thorough is shrunk where the shipped file keeps base's values (1 fold of bar-count windows,
1 seed, a small feature selection, no tear sheets); its agents are the shipped ones, untouched.
``--params`` shrinks the budget to a few thousand env steps: one rollout of every on-policy agent
and a few gradient steps of every off-policy one (learning_starts 5,000).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests._project import copy_project

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow

SMALL = {
    "folds": {
        "train": 2000,
        "validation": 400,
        "test": 400,
        "observation_window": 30,
        "label_horizon": 24,
    },
    "n_folds": 1,
    "seeds": [0],
    "features": {"selection": {"n_features": 4, "n_estimators": 10, "max_depth": 4}},
    "baselines": ["buy_and_hold", "do_nothing"],
    "lookahead": {"decision_points": 2},
    "monte_carlo": {"n_paths": 1000},
    "overfitting": {"bootstrap_n": 200, "pbo_blocks": 4},
}
PARAMS = "walk_forward.training.total_timesteps=6000,walk_forward.training.eval_freq=3000,walk_forward.training.progress_every=null"


def _copy_project(dst: Path) -> Path:
    copy_project(dst)
    zoo_file = dst / "conf" / "thorough" / "parameters_walk_forward.yml"
    zoo = yaml.safe_load(zoo_file.read_text())
    assert not set(SMALL) & set(zoo["walk_forward"]), (
        "the test would overwrite a key the shipped zoo sets"
    )
    zoo["walk_forward"].update(SMALL)
    zoo_file.write_text(yaml.safe_dump(zoo, sort_keys=False))
    (dst / "conf" / "thorough" / "parameters_report.yml").write_text(
        yaml.safe_dump({"report": {"tearsheets": []}})
    )
    return dst


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    assert versions, f"no version written under {path}"
    return versions[-1] / path.name


def test_the_thorough_zoo_runs_every_agent_through_the_real_catalog(
    tmp_path: Path,
) -> None:
    shipped = yaml.safe_load(
        (ROOT / "conf" / "thorough" / "parameters_walk_forward.yml").read_text()
    )["walk_forward"]
    agents = [a["name"] for a in shipped["agents"]]
    algos = {a["agent"]["algo"] for a in shipped["agents"]}
    extractors = {a["agent"]["extractor"] for a in shipped["agents"]}
    assert algos == {
        "ppo",
        "a2c",
        "dqn",
        "sac",
        "td3",
        "qrdqn",
        "recurrent_ppo",
        "maskable_ppo",
        "tqc",
    }
    assert extractors == {"mlp", "lstm", "tcn", "tcn_transformer"}
    assert shipped["training"]["total_timesteps"] == 1_000_000

    project = _copy_project(tmp_path / "zoo")
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_ENV"}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--pipeline=walk_forward",
        "--env",
        "thorough",
        f"--params={PARAMS}",
    ]
    proc = subprocess.run(
        cmd,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    models = sorted(
        p.name
        for p in (project / "data" / "06_models").rglob("*_model.zip")
        if p.is_dir()
    )
    assert models == sorted(f"fold_0.{a}_seed_0_model.zip" for a in agents), (
        models
    )  # built from conf/thorough: 1 fold, 1 seed
    summary = pd.read_parquet(
        _latest(
            project / "data" / "08_reporting" / "walk_forward_summary_report.parquet"
        )
    )
    ranked = summary[summary["kind"] == "agent"].set_index("strategy")
    assert sorted(ranked.index) == sorted(agents)
    for agent in agents:
        for metric in (
            "sharpe_mean",
            "total_return_mean",
            "max_drawdown_mean",
            "turnover_mean",
        ):
            assert math.isfinite(ranked.loc[agent, metric]), (
                agent,
                metric,
                ranked.loc[agent, metric],
            )
        assert (
            ranked.loc[agent, "n_bars_mean"] > 300
        )  # the whole (shrunk) test window was traded


def test_the_session_env_decides_what_the_pipeline_is_built_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``kedro run --env thorough`` without KEDRO_ENV: the hook records the session's env before
    Kedro builds the pipelines, and the build reads conf/base + conf/thorough."""
    from types import SimpleNamespace

    from quant_arena import settings
    from quant_arena.hooks import RunEnvironmentHooks, run_environment
    from quant_arena.pipelines.walk_forward.pipeline import read_built_config

    monkeypatch.delenv("KEDRO_ENV", raising=False)
    assert any(isinstance(h, RunEnvironmentHooks) for h in settings.HOOKS)
    zoo = [
        a["name"]
        for a in yaml.safe_load(
            (ROOT / "conf" / "thorough" / "parameters_walk_forward.yml").read_text()
        )["walk_forward"]["agents"]
    ]
    base = [
        a["name"]
        for a in yaml.safe_load(
            (ROOT / "conf" / "base" / "parameters_walk_forward.yml").read_text()
        )["walk_forward"]["agents"]
    ]
    hooks = RunEnvironmentHooks()
    try:
        hooks.after_context_created(SimpleNamespace(env="thorough"))
        assert run_environment() == "thorough"
        built = read_built_config(ROOT)
        assert [a.name for a in built.agents] == zoo
        assert built.training.total_timesteps == 1_000_000
        assert (
            built.n_folds == 4 and built.folds.train == "365d"
        )  # the rest merged from conf/base, key by key
    finally:
        hooks.after_context_created(SimpleNamespace(env=None))
    assert run_environment() is None
    assert [a.name for a in read_built_config(ROOT, env="base").agents] == base
