"""Interrupt a real ``kedro run --pipeline=walk_forward`` mid-fold, resume it, and get the same numbers.

A tiny study (2 folds of bar-count windows on the shipped BTC/USD data, one small PPO, one seed,
three baselines, no tear sheets) runs in temporary copies of the project (pyproject, .telemetry,
conf, data/01_raw), as ``kedro`` subprocesses:

1. copy A: an uninterrupted run -> the reference numbers;
2. copy B: the same run, killed (SIGKILL) as soon as the first agent model has been saved, then
   ``kedro run --only-missing-outputs``: the finished model is not retrained (its version folder
   is the only one) and the summary equals copy A's;
3. copy B: ``kedro run --namespaces=walk_forward.fold_0`` re-runs fold 0 alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests._project import copy_project

TIMESTEPS = 256

pytestmark = pytest.mark.slow

TINY = {
    "folds": {"train": 2000, "validation": 500, "test": 500, "observation_window": 30, "label_horizon": 24},
    "n_folds": 2,
    "features": {"scaler": "robust", "selection": {"n_features": 4, "n_estimators": 10, "max_depth": 4, "min_samples_leaf": 50, "label_horizon": 24}},
    "training": {"total_timesteps": 2048, "eval_freq": 128, "patience": 2, "n_envs": 2, "episode_length": 128},
    "agents": [{"name": "ppo_mlp", "agent": {
        "algo": "ppo", "hyperparameters": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "policy_kwargs": {"net_arch": {"pi": [16], "vf": [16]}}, "extractor": "mlp",
        "extractor_kwargs": {"features_dim": 16, "hidden": [16]}}}],
    "seeds": [0],
    "baselines": ["buy_and_hold", "do_nothing", "ma_crossover"],
    "lookahead": {"decision_points": 4},
}


def _copy_project(dst: Path) -> Path:
    copy_project(dst)
    wf_file = dst / "conf" / "base" / "parameters_walk_forward.yml"
    wf = yaml.safe_load(wf_file.read_text())
    wf["walk_forward"].update(TINY)
    wf_file.write_text(yaml.safe_dump(wf, sort_keys=False))
    rep_file = dst / "conf" / "base" / "parameters_report.yml"
    if rep_file.exists():
        rep = yaml.safe_load(rep_file.read_text())
        rep["report"]["tearsheets"] = []
        rep_file.write_text(yaml.safe_dump(rep, sort_keys=False))
    return dst


def _kedro(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "kedro", "run", "--pipeline=walk_forward",
            f"--params=walk_forward.training.total_timesteps={TIMESTEPS}", *args]


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}", KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1")
    return env


def _run(project: Path, *args: str) -> None:
    proc = subprocess.run(_kedro(project, *args), check=False, cwd=project, env=_env(project), capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _latest(path: Path) -> Path:
    versions = sorted(p for p in path.iterdir() if p.is_dir())
    return versions[-1] / path.name


def _summary(project: Path) -> pd.DataFrame:
    return pd.read_parquet(_latest(project / "data" / "08_reporting" / "walk_forward_summary_report.parquet"))


def _models(project: Path) -> dict[str, list[str]]:
    """Model dataset -> its version folders (only finished saves)."""
    out = {}
    for folder in sorted((project / "data" / "06_models").rglob("*_model.zip")):
        if folder.is_dir():
            out[folder.name] = sorted(v.name for v in folder.iterdir() if (v / folder.name).is_file())
    return out


def test_interrupted_run_resumes_without_retraining_and_gives_the_same_numbers(tmp_path: Path):
    reference = _copy_project(tmp_path / "a")
    _run(reference)
    expected = _summary(reference)

    project = _copy_project(tmp_path / "b")
    proc = subprocess.Popen(_kedro(project), cwd=project, env=_env(project), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            artifacts = list((project / "data" / "06_models").rglob("*ppo_mlp_seed_0_training.pkl/*/*.pkl"))
            if artifacts:  # the first agent's node has saved its model and its training record
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)  # mid-fold: the other fold and the fan-in have not run
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = _models(project)
    assert len(before) == 1, before  # one model was finished when the run died
    assert not (project / "data" / "08_reporting" / "walk_forward_summary_report.parquet").exists()

    _run(project, "--only-missing-outputs")
    after = _models(project)
    for name, versions in before.items():
        assert after[name] == versions, f"{name} was retrained"  # no new version of the finished model
    assert len(after) == 2  # the other fold's model was trained now
    pd.testing.assert_frame_equal(_summary(project), expected, check_exact=True)

    # one fold alone: only fold 0's nodes run (a new version of its model, none of fold 1's)
    _run(project, "--namespaces=walk_forward.fold_0")
    alone = _models(project)
    fold0 = next(n for n in alone if n.startswith("fold_0"))
    fold1 = next(n for n in alone if n.startswith("fold_1"))
    assert len(alone[fold0]) == len(after[fold0]) + 1
    assert alone[fold1] == after[fold1]
