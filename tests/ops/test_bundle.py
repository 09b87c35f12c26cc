"""The model bundle: a round trip keeps everything, a damaged bundle names its file, and
``bundle_actions`` is the study's own out-of-sample run of the model."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import torch

from quant_arena.agents import OnnxPolicy
from quant_arena.market import DataError
from quant_arena.ops import (
    BUNDLE_FILES,
    BundleError,
    ModelBundle,
    bundle_actions,
    code_version,
    load_bundle,
    save_bundle,
)
from quant_arena.ops import bundle as bundle_module
from quant_arena.study import FeatureSetConfig, fit_feature_set, make_eval_env
from tests.ops._tiny_model import COLUMNS, OOS, train_tiny

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny():
    return train_tiny()


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    return save_bundle(tiny.bundle, tmp_path_factory.mktemp("bundle") / "b")


def _same_run(a, b) -> bool:
    return (
        np.array_equal(a.positions, b.positions)
        and np.array_equal(a.returns, b.returns)
        and np.array_equal(a.equity, b.equity)
        and all(np.array_equal(a.columns[k], b.columns[k]) for k in a.columns)
    )


def test_round_trip_keeps_every_field_and_the_weights(tiny, saved):
    assert sorted(p.name for p in saved.iterdir()) == sorted(BUNDLE_FILES)
    back = load_bundle(saved)
    b = tiny.bundle
    assert (back.algo, back.agent, back.feature_columns) == (
        b.algo,
        b.agent,
        b.feature_columns,
    )
    assert (back.data_span, back.metrics, back.code_version, back.extra) == (
        b.data_span,
        b.metrics,
        b.code_version,
        b.extra,
    )
    assert back.env_config == b.env_config and back.directory == saved
    assert (
        back.scaler.kind,
        back.scaler.columns,
        back.scaler.center,
        back.scaler.scale,
    ) == (b.scaler.kind, b.scaler.columns, b.scaler.center, b.scaler.scale)
    ours, theirs = b.model.policy.state_dict(), back.model.policy.state_dict()
    assert ours.keys() == theirs.keys() and all(
        torch.equal(ours[k], theirs[k]) for k in ours
    )
    # the observation normalisation saved with the model (scaler statistics) came back too
    assert back.model.quant_arena_normalization == b.model.quant_arena_normalization
    assert back.model.quant_arena_normalization["feature_scaler"]["columns"] == COLUMNS


def test_the_onnx_policy_in_the_bundle_acts_as_the_model(tiny, saved):
    policy = OnnxPolicy(load_bundle(saved).onnx_path)
    env = make_eval_env(tiny.unit.data(OOS[1]), tiny.unit.env, OOS[0])
    obs, _ = env.reset()
    for _ in range(30):
        expected, _ = tiny.bundle.model.predict(obs, deterministic=True)
        got, _ = policy.predict(obs)
        assert int(got) == int(expected)
        obs, *_ = env.step(expected)


@pytest.mark.parametrize("missing", BUNDLE_FILES)
def test_a_missing_file_is_named(saved, tmp_path, missing):
    copy = tmp_path / "b"
    subprocess.run(["cp", "-r", str(saved), str(copy)], check=True)
    (copy / missing).unlink()
    with pytest.raises(BundleError, match=re.escape(f"{copy / missing}: missing")):
        load_bundle(copy)


def test_an_altered_file_is_named(saved, tmp_path):
    copy = tmp_path / "b"
    subprocess.run(["cp", "-r", str(saved), str(copy)], check=True)
    (copy / "features.json").write_text(
        json.dumps(["f_b", "f_a", "f_c"])
    )  # columns swapped: a silent disaster
    with pytest.raises(
        BundleError, match=re.escape(f"{copy / 'features.json'}: altered")
    ):
        load_bundle(copy)


def test_bundle_actions_is_the_studys_out_of_sample_run(tiny, saved):
    """The bundle's run on the UNSCALED table equals the fold unit's score on the study's scaled
    model input (same bars, same simulator), and a loaded bundle gives it again."""
    study = tiny.unit.score(tiny.bundle.model, *OOS)
    assert (
        len(np.unique(study.positions)) > 1
    )  # the policy trades: the comparison has content
    assert _same_run(bundle_actions(tiny.bundle, tiny.table, *OOS), study)
    assert _same_run(bundle_actions(load_bundle(saved), tiny.table, *OOS), study)


def test_bundle_actions_scales_with_the_bundles_scaler(tiny):
    """Another scaler in the bundle changes the run: bundle_actions scales with the bundle's own."""
    minmax = fit_feature_set(
        tiny.table,
        (0, 700),
        FeatureSetConfig(columns=COLUMNS, selection=None, scaler="minmax"),
    ).scaler
    other = ModelBundle(**{**tiny.bundle.__dict__, "scaler": minmax})
    a = bundle_actions(tiny.bundle, tiny.table, *OOS)
    b = bundle_actions(other, tiny.table, *OOS)
    assert not np.array_equal(a.positions, b.positions)


def test_a_scaler_fitted_on_more_columns_is_used_on_the_agents_columns():
    """walk_forward fits one scaler on every agent's columns; the bundle keeps it whole and
    bundle_actions scales only the agent's columns, as the study's model input did."""
    tiny = train_tiny(scaler_columns=(*COLUMNS, "f_extra"))
    assert tiny.bundle.scaler.columns == [*COLUMNS, "f_extra"]
    study = tiny.unit.score(tiny.bundle.model, *OOS)
    assert _same_run(
        bundle_actions(tiny.bundle, tiny.table.drop(columns="f_extra"), *OOS), study
    )


def test_bundle_actions_names_missing_columns_and_bad_windows(tiny):
    with pytest.raises(
        DataError, match=r"lacks the bundle's feature columns \['f_b'\]"
    ):
        bundle_actions(tiny.bundle, tiny.table.drop(columns="f_b"), *OOS)
    with pytest.raises(
        DataError, match=r"rows \[550, 701\) are not inside the table's 700 rows"
    ):
        bundle_actions(tiny.bundle, tiny.table, 550, 701)


def test_save_refuses_a_scaler_without_the_feature_columns(tiny, tmp_path):
    bad = ModelBundle(
        **{**tiny.bundle.__dict__, "feature_columns": [*COLUMNS, "f_new"]}
    )
    with pytest.raises(
        BundleError, match=r"not fitted on the feature columns \['f_new'\]"
    ):
        save_bundle(bad, tmp_path / "b")
    assert not (tmp_path / "b" / "model.zip").exists()


def test_code_version_is_the_package_version_and_the_git_commit(monkeypatch):
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert code_version() == f"0.1+{head}"

    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(bundle_module.subprocess, "run", no_git)
    assert code_version() == "0.1+unknown"
