"""SB3ModelDataset round-trips models, keeps versions apart and refuses what it cannot load."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError, Version
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.envs import IdentityEnv, IdentityEnvBox

from quant_arena.datasets import SB3ModelDataset

torch.set_num_threads(1)


def _obs(env, n: int = 20) -> np.ndarray:
    return np.stack([env.observation_space.sample() for _ in range(n)])


@pytest.mark.parametrize("algo_cls,env_cls", [(PPO, IdentityEnv), (A2C, IdentityEnvBox)])
def test_round_trip_gives_the_same_actions(tmp_path, algo_cls, env_cls) -> None:
    env = env_cls(10) if env_cls is IdentityEnv else env_cls()
    extra = {"batch_size": 16} if algo_cls is PPO else {}
    model = algo_cls("MlpPolicy", env, seed=3, n_steps=16, device="cpu", **extra)
    model.learn(32)
    ds = SB3ModelDataset(filepath=str(tmp_path / "model.zip"))
    ds.save(model)
    loaded = ds.load()
    assert type(loaded) is algo_cls
    obs = _obs(env)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    # still a plain SB3 zip: the library's own loader reads it
    assert type(algo_cls.load(tmp_path / "model.zip", device="cpu")) is algo_cls


def test_versioned_saves_do_not_overwrite(tmp_path) -> None:
    env = IdentityEnv(5)
    first = PPO("MlpPolicy", env, seed=1, n_steps=16, batch_size=16, device="cpu")
    second = PPO("MlpPolicy", env, seed=2, n_steps=16, batch_size=16, device="cpu")
    SB3ModelDataset(filepath=str(tmp_path / "m.zip"), version=Version(None, "2026-01-01T00.00.00.000Z")).save(first)
    SB3ModelDataset(filepath=str(tmp_path / "m.zip"), version=Version(None, "2026-01-02T00.00.00.000Z")).save(second)
    old = SB3ModelDataset(filepath=str(tmp_path / "m.zip"), version=Version("2026-01-01T00.00.00.000Z", None)).load()
    latest = SB3ModelDataset(filepath=str(tmp_path / "m.zip"), version=Version(None, None)).load()
    w = lambda m: next(iter(m.policy.state_dict().values()))  # noqa: E731
    assert torch.equal(w(old), w(first)) and torch.equal(w(latest), w(second))
    assert not torch.equal(w(old), w(latest))


def test_refuses_non_models_and_foreign_zips(tmp_path) -> None:
    ds = SB3ModelDataset(filepath=str(tmp_path / "x.zip"))
    with pytest.raises(DatasetError, match="can only save SB3"):
        ds.save({"not": "a model"})
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as z:
        z.writestr("data", "{}")
    with pytest.raises(DatasetError, match="not written by SB3ModelDataset"):
        ds.load()
    assert SB3ModelDataset(filepath=str(tmp_path / "missing.zip")).exists() is False
