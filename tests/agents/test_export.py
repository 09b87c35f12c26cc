"""ONNX export: the exported policy chooses the same actions as the torch policy on 1,000 observations.

Observations are real ones (TradingEnv rolled with random actions, so account states vary) with
their market part perturbed, so the actions are not all alike. Discrete actions must be equal;
continuous ones equal to float32 precision.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from sb3_contrib import RecurrentPPO

from quant_arena.agents.export import (
    NumpyPolicy,
    OnnxPolicy,
    PolicyFileError,
    UnsupportedPolicyError,
    export_onnx,
)
from quant_arena.agents.factory import AgentConfig, make_agent
from quant_arena.agents.training import attach_normalization, normalize_observation
from quant_arena.envs import TradingEnv
from tests.agents._market import planted_signal_market

DATA = planted_signal_market(1500, seed=0)
N_OBS = 1000


def _env(scheme: str, observation: str = "dict") -> TradingEnv:
    return TradingEnv(DATA, window=8, action_scheme=scheme, observation=observation, max_episode_steps=200)


def _observations(env: TradingEnv, n: int = N_OBS, seed: int = 0):
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(n):
        rows.append(obs)
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            obs, _ = env.reset()
    if isinstance(rows[0], dict):
        batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
        batch["market"] = batch["market"] * rng.uniform(0.5, 3.0, (n, 1, 1)).astype(np.float32)
        return batch
    return np.stack(rows) * rng.uniform(0.5, 3.0, (n, 1)).astype(np.float32)


def _model(algo: str, scheme: str, extractor: str | None, observation: str = "dict", steps: int = 128, **hyper):
    env = _env(scheme, observation)
    kwargs = {"extractor_kwargs": {"features_dim": 16}} if extractor not in (None, "mlp") else {}
    config = AgentConfig(algo=algo, extractor=extractor, hyperparameters=hyper, seed=1, **kwargs)
    model = make_agent(config, env)
    model.learn(steps)
    return model, env


def _assert_same(model, policy, obs, continuous: bool, masks=None):
    kw = {"action_masks": masks} if masks is not None else {}
    torch_actions, _ = model.predict(obs, deterministic=True, **kw)
    ours, _ = policy.predict(obs, **kw)
    assert ours.shape == torch_actions.shape
    if continuous:
        np.testing.assert_allclose(ours, torch_actions, rtol=0, atol=1e-5)
        assert torch_actions.std() > 0  # the actions do depend on the observation
    else:
        np.testing.assert_array_equal(ours, torch_actions)
        assert len(np.unique(torch_actions)) >= 2
    return torch_actions


PPO_CASES = [
    ("discrete", "mlp"),
    ("continuous", "mlp"),
    ("discrete", "tcn"),
    ("continuous", "lstm"),
    ("discrete", "cnn"),
    ("discrete", "tcn_transformer"),
    ("continuous", "mamba"),
    ("discrete", None),  # SB3's CombinedExtractor
]


@pytest.mark.parametrize(("scheme", "extractor"), PPO_CASES)
def test_ppo_onnx_matches_torch_on_1000_observations(tmp_path, scheme, extractor):
    model, env = _model("ppo", scheme, extractor, n_steps=64, batch_size=64, n_epochs=1)
    path = export_onnx(model, tmp_path / "policy.onnx")
    onnx.checker.check_model(str(path))
    policy = OnnxPolicy(path)
    obs = _observations(env)
    actions = _assert_same(model, policy, obs, scheme == "continuous")
    # one observation at a time (the pre-bound low-latency path) gives the batch's answers
    for i in range(0, N_OBS, 97):
        one = {k: v[i] for k, v in obs.items()}
        single, _ = policy.predict(one)
        ref, _ = model.predict(one, deterministic=True)
        assert single.shape == ref.shape
        np.testing.assert_allclose(single, actions[i], atol=1e-5)
    if extractor in ("mlp", None):  # the numpy forward pass: same actions, no runtime at all
        _assert_same(model, NumpyPolicy(model), obs, scheme == "continuous")


def test_flat_box_observation_mlp_policy(tmp_path):
    model, env = _model("ppo", "discrete", None, observation="flat", n_steps=64, batch_size=64, n_epochs=1)
    policy = OnnxPolicy(export_onnx(model, tmp_path / "p.onnx"))
    obs = _observations(env)
    _assert_same(model, policy, obs, False)
    _assert_same(model, NumpyPolicy(model), obs, False)
    assert int(policy(obs[0])) == int(model.predict(obs[0], deterministic=True)[0])


@pytest.mark.parametrize(("algo", "scheme", "hyper"), [
    ("dqn", "discrete", {"learning_starts": 32, "buffer_size": 500}),
    ("sac", "continuous", {"learning_starts": 32, "buffer_size": 500, "batch_size": 32}),
    ("td3", "continuous", {"learning_starts": 32, "buffer_size": 500, "batch_size": 32}),
])
def test_off_policy_algorithms_export(tmp_path, algo, scheme, hyper):
    model, env = _model(algo, scheme, "mlp", steps=64, **hyper)
    policy = OnnxPolicy(export_onnx(model, tmp_path / "p.onnx"))
    _assert_same(model, policy, _observations(env, 300), scheme == "continuous")


def test_maskable_ppo_uses_the_masks(tmp_path):
    model, env = _model("maskable_ppo", "discrete", "mlp", n_steps=64, batch_size=64, n_epochs=1)
    policy = OnnxPolicy(export_onnx(model, tmp_path / "p.onnx"))
    obs = _observations(env, 300)
    rng = np.random.default_rng(3)
    masks = rng.random((300, 4)) < 0.6
    masks[np.arange(300), rng.integers(0, 4, 300)] = True  # at least one valid action
    actions = _assert_same(model, policy, obs, False, masks=masks)
    assert masks[np.arange(300), actions].all()


def test_vec_normalize_statistics_are_part_of_the_graph(tmp_path):
    model, env = _model("ppo", "discrete", "mlp", n_steps=64, batch_size=64, n_epochs=1)
    rng = np.random.default_rng(0)
    stats = {"vec_normalize": {"kind": "vec_normalize", "clip_obs": 5.0, "epsilon": 1e-8, "obs_rms": {
        "market": {"mean": rng.normal(size=(8, 3)).tolist(), "var": rng.uniform(0.5, 2, (8, 3)).tolist(), "count": 100.0},
        "account": {"mean": rng.normal(size=6).tolist(), "var": rng.uniform(0.5, 2, 6).tolist(), "count": 100.0}}}}
    attach_normalization(model, stats)
    policy = OnnxPolicy(export_onnx(model, tmp_path / "p.onnx"))
    assert policy.metadata["normalized_obs"]
    raw = _observations(env, 300)
    expected, _ = model.predict(normalize_observation(raw, stats), deterministic=True)
    np.testing.assert_array_equal(policy.predict(raw)[0], expected)
    np.testing.assert_array_equal(NumpyPolicy(model).predict(raw)[0], expected)


def test_refusals(tmp_path):
    env = _env("discrete")
    rppo = RecurrentPPO("MultiInputLstmPolicy", env, n_steps=16, batch_size=16, seed=0)
    with pytest.raises(UnsupportedPolicyError, match="RecurrentPPO"):
        export_onnx(rppo, tmp_path / "r.onnx")
    model, _ = _model("ppo", "discrete", "tcn", steps=64, n_steps=64, batch_size=64, n_epochs=1)
    with pytest.raises(UnsupportedPolicyError, match="TCNExtractor"):
        NumpyPolicy(model)


def test_unusable_policy_files_raise_the_projects_own_error(tmp_path):
    """Each unusable file gives PolicyFileError naming the file and the cause in our words,
    whatever onnxruntime's release says (its message stays only as ``__cause__``)."""
    missing = tmp_path / "missing.onnx"
    with pytest.raises(PolicyFileError, match=r"missing\.onnx: no such policy file"):
        OnnxPolicy(missing)

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(PolicyFileError, match=r"garbage\.onnx: not a loadable ONNX model") as err:
        OnnxPolicy(garbage)
    assert err.value.__cause__ is not None

    # a valid ONNX model (identity) that export_onnx did not write: no metadata
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    foreign = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    foreign.ir_version = 8
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(PolicyFileError, match=r"foreign\.onnx: not written by quant_arena\.agents\.export_onnx"):
        OnnxPolicy(tmp_path / "foreign.onnx")

    onnx.helper.set_model_props(foreign, {"quant_arena": "{not json"})
    onnx.save(foreign, str(tmp_path / "badmeta.onnx"))
    with pytest.raises(PolicyFileError, match=r"badmeta\.onnx: its 'quant_arena' metadata is not valid JSON"):
        OnnxPolicy(tmp_path / "badmeta.onnx")
