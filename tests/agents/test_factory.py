"""The agent factory: every algorithm and extractor trains (smoke), refusals, validation, determinism.

Runs on a tiny Dict-observation env written here (not TradingEnv) so it is fast and independent of
envs/. Sizes are minimal: a few hundred env steps per model.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pydantic
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv

from quant_arena.agents.extractors import EXTRACTORS, TCNExtractor
from quant_arena.agents.factory import (
    ALGORITHMS,
    AgentConfig,
    IncompatibleAgentError,
    compatible_algorithms,
    make_agent,
    resolve_policy,
)

WINDOW, N_FEATURES, N_ACCOUNT, EPISODE = 6, 3, 2, 24


class TinyMarketEnv(gym.Env):
    """A toy market: the current bar's first feature is the sign of the next reward for a long.

    Observation: Dict(market=(WINDOW, N_FEATURES), account=(position, time fraction)).
    Actions: "discrete" {0: short, 1: flat, 2: long}; "box" target exposure in [-1, 1];
    "multidiscrete" (direction, size). ``flat_obs=True`` gives a 1-D Box observation instead.
    """

    metadata = {"render_modes": []}

    def __init__(self, action: str = "discrete", flat_obs: bool = False) -> None:
        super().__init__()
        self.action_kind = action
        market = spaces.Box(-np.inf, np.inf, (WINDOW, N_FEATURES), np.float32)
        account = spaces.Box(-np.inf, np.inf, (N_ACCOUNT,), np.float32)
        self.flat_obs = flat_obs
        if flat_obs:
            self.observation_space = spaces.Box(-np.inf, np.inf, (WINDOW * N_FEATURES + N_ACCOUNT,), np.float32)
        else:
            self.observation_space = spaces.Dict({"market": market, "account": account})
        self.action_space = {
            "discrete": spaces.Discrete(3),
            "box": spaces.Box(-1.0, 1.0, (1,), np.float32),
            "multidiscrete": spaces.MultiDiscrete([3, 2]),
        }[action]
        self._bars = np.zeros((EPISODE + WINDOW, N_FEATURES), np.float32)
        self._t = 0
        self._position = 0.0

    def _obs(self):
        market = self._bars[self._t : self._t + WINDOW]
        account = np.array([self._position, self._t / EPISODE], np.float32)
        if self.flat_obs:
            return np.concatenate([market.ravel(), account])
        return {"market": market.copy(), "account": account}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._bars = self.np_random.standard_normal((EPISODE + WINDOW, N_FEATURES)).astype(np.float32)
        self._t, self._position = 0, 0.0
        return self._obs(), {}

    def step(self, action):
        if self.action_kind == "discrete":
            position = float(int(action) - 1)
        elif self.action_kind == "box":
            position = float(np.clip(np.asarray(action).ravel()[0], -1, 1))
        else:
            direction, size = (int(a) for a in action)
            position = (direction - 1) * (0.5 + 0.5 * size)
        signal = np.sign(self._bars[self._t + WINDOW - 1, 0])
        reward = float(position * signal - 0.01 * abs(position - self._position))
        self._position = position
        self._t += 1
        return self._obs(), reward, False, self._t >= EPISODE, {}


class MaskedTinyMarketEnv(TinyMarketEnv):
    """Same, with ``action_masks()``: no new long while already long, no new short while short."""

    def action_masks(self) -> np.ndarray:
        if self.action_kind == "discrete":
            return np.array([self._position >= 0, True, self._position <= 0])
        return np.array([self._position >= 0, True, self._position <= 0, True, True])


def env_for(algo: str) -> TinyMarketEnv:
    if algo in ("sac", "td3", "tqc"):
        return TinyMarketEnv("box")
    return MaskedTinyMarketEnv("discrete")


OFF_POLICY = {"learning_starts": 32, "buffer_size": 1_000, "batch_size": 16}
SMOKE: dict[str, dict] = {
    "ppo": {"hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2}},
    "a2c": {"hyperparameters": {"n_steps": 8}},
    "dqn": {"hyperparameters": {**OFF_POLICY, "train_freq": 4, "target_update_interval": 50}},
    "qrdqn": {"hyperparameters": {**OFF_POLICY, "train_freq": 4, "target_update_interval": 50}, "policy_kwargs": {"n_quantiles": 10}},
    "sac": {"hyperparameters": {**OFF_POLICY, "train_freq": 2}},
    "td3": {"hyperparameters": {**OFF_POLICY, "train_freq": 2}},
    "tqc": {"hyperparameters": {**OFF_POLICY, "train_freq": 2}, "policy_kwargs": {"n_quantiles": 5}},
    "recurrent_ppo": {"hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2}, "policy_kwargs": {"lstm_hidden_size": 16}},
    "maskable_ppo": {"hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2}},
}
SMALL_NET = {"net_arch": [32, 32]}
SMALL_EXTRACTOR = {
    "mlp": {"features_dim": 16, "hidden": [32]},
    "cnn": {"features_dim": 16, "channels": [8, 8]},
    "lstm": {"features_dim": 16, "hidden_size": 16},
    "tcn": {"features_dim": 16, "channels": 8},
    "tcn_transformer": {"features_dim": 16, "d_model": 8, "n_heads": 2, "n_layers": 1, "dim_feedforward": 16},
    "mamba": {"features_dim": 16, "d_model": 8, "d_state": 4},
}


def smoke_config(algo: str, **overrides) -> AgentConfig:
    block = SMOKE[algo]
    fields = {
        "algo": algo,
        "hyperparameters": dict(block["hyperparameters"]),
        "policy_kwargs": {**SMALL_NET, **block.get("policy_kwargs", {})},
        "seed": 3,
    }
    fields.update(overrides)
    return AgentConfig(**fields)


def params(model) -> dict[str, th.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


@pytest.mark.filterwarnings("ignore:Your observation market has an unconventional shape")
def test_tiny_env_is_a_valid_env() -> None:
    for env in (MaskedTinyMarketEnv("discrete"), TinyMarketEnv("box"), MaskedTinyMarketEnv("multidiscrete"), TinyMarketEnv(flat_obs=True)):
        check_env(env, warn=True)


EXPECTED_CLASS = {"ppo": PPO, "a2c": A2C, "dqn": DQN, "sac": SAC, "td3": TD3, "qrdqn": QRDQN, "recurrent_ppo": RecurrentPPO, "maskable_ppo": MaskablePPO, "tqc": TQC}


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_builds_and_learns(algo: str) -> None:
    env = env_for(algo)
    model = make_agent(smoke_config(algo), env)
    assert type(model) is EXPECTED_CLASS[algo]
    assert model.device.type == "cpu"
    assert type(model.policy) is model.policy_aliases[ALGORITHMS[algo].dict_policy]
    before = params(model)
    model.learn(total_timesteps=128)
    assert model.num_timesteps >= 128
    after = params(model)
    moved = [k for k in before if not th.equal(before[k], after[k])]
    assert moved, f"{algo}: no weight changed during learn()"
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype).reshape(env.action_space.shape))


def test_maskable_ppo_respects_masks_and_takes_multidiscrete() -> None:
    env = MaskedTinyMarketEnv("discrete")
    model = make_agent(smoke_config("maskable_ppo"), env)
    model.learn(64)
    obs, _ = env.reset(seed=1)
    env._position = 1.0  # long: a new long (action 2) is masked out
    obs = env._obs()
    for _ in range(20):
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=False)
        assert int(action) != 2
    md = make_agent(smoke_config("maskable_ppo"), DummyVecEnv([lambda: MaskedTinyMarketEnv("multidiscrete")]))
    md.learn(64)


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_every_extractor_trains_in_ppo(name: str) -> None:
    config = smoke_config(
        "ppo",
        hyperparameters={"n_steps": 32, "batch_size": 16, "n_epochs": 1},
        extractor=name,
        extractor_kwargs=SMALL_EXTRACTOR[name],
    )
    model = make_agent(config, MaskedTinyMarketEnv("discrete"))
    assert type(model.policy.features_extractor) is EXTRACTORS[name]
    before = {k: v.clone() for k, v in model.policy.features_extractor.state_dict().items()}
    model.learn(64)
    after = model.policy.features_extractor.state_dict()
    assert any(not th.equal(before[k], after[k]) for k in before), f"{name}: extractor weights did not move"


@pytest.mark.parametrize(("algo", "extractor"), [("sac", "tcn"), ("qrdqn", "mamba"), ("recurrent_ppo", "tcn_transformer")])
def test_extractors_work_with_off_policy_and_recurrent_algorithms(algo: str, extractor: str) -> None:
    overrides = {"extractor": extractor, "extractor_kwargs": SMALL_EXTRACTOR[extractor]}
    if algo == "sac":  # one extractor shared by actor and critic: the cheap setting for heavy extractors
        overrides["policy_kwargs"] = {**SMALL_NET, "share_features_extractor": True}
    model = make_agent(smoke_config(algo, **overrides), env_for(algo))
    model.learn(96)
    extractors = [m for m in model.policy.modules() if isinstance(m, EXTRACTORS[extractor])]
    assert extractors, f"{algo}: the {extractor} extractor is not in the policy"
    if algo == "sac":
        assert model.policy.share_features_extractor
        assert model.policy.actor.features_extractor is model.policy.critic.features_extractor


@pytest.mark.parametrize(
    ("algo", "env", "match"),
    [
        ("dqn", TinyMarketEnv("box"), "'dqn' \\(DQN\\) needs a Discrete action space"),
        ("qrdqn", TinyMarketEnv("box"), "needs a Discrete action space"),
        ("dqn", MaskedTinyMarketEnv("multidiscrete"), "needs a Discrete action space"),
        ("sac", MaskedTinyMarketEnv("discrete"), "'sac' \\(SAC\\) needs a Box action space"),
        ("td3", MaskedTinyMarketEnv("discrete"), "needs a Box action space"),
        ("tqc", MaskedTinyMarketEnv("discrete"), "needs a Box action space"),
        ("maskable_ppo", TinyMarketEnv("box"), "needs a Discrete or MultiDiscrete or MultiBinary action space"),
        ("maskable_ppo", TinyMarketEnv("discrete"), "needs an env with an action_masks\\(\\) method"),
        ("maskable_ppo", DummyVecEnv([lambda: TinyMarketEnv("discrete")]), "action_masks"),
    ],
)
def test_mismatched_algorithm_is_refused_before_any_model_is_built(algo, env, match, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("a model was constructed before the refusal")

    monkeypatch.setattr(ALGORITHMS[algo].cls, "__init__", no_model)
    with pytest.raises(IncompatibleAgentError, match=match) as err:
        make_agent(AgentConfig(algo=algo), env)
    if "action space" in str(err.value):
        assert "an algorithm that fits this one" in str(err.value)


def test_compatible_algorithms_lists_what_fits() -> None:
    assert set(compatible_algorithms(spaces.Box(-1, 1, (1,)))) == {"ppo", "a2c", "sac", "td3", "tqc", "recurrent_ppo"}
    assert set(compatible_algorithms(spaces.Discrete(3))) == {"ppo", "a2c", "dqn", "qrdqn", "recurrent_ppo", "maskable_ppo"}


def test_sequence_extractor_refused_on_a_flat_observation() -> None:
    env = TinyMarketEnv(flat_obs=True)
    with pytest.raises(IncompatibleAgentError, match="extractor 'tcn' needs a Dict"):
        make_agent(AgentConfig(algo="ppo", extractor="tcn"), env)
    # The flat MLP extractor is fine there, and the policy is the Box one.
    model = make_agent(AgentConfig(algo="ppo", extractor="mlp", extractor_kwargs={"features_dim": 8}), env)
    assert type(model.policy).__name__ == "ActorCriticPolicy"


def test_policy_follows_the_observation_space() -> None:
    dict_space, box_space = MaskedTinyMarketEnv().observation_space, TinyMarketEnv(flat_obs=True).observation_space
    assert resolve_policy(AgentConfig(algo="ppo"), dict_space) == "MultiInputPolicy"
    assert resolve_policy(AgentConfig(algo="ppo"), box_space) == "MlpPolicy"
    assert resolve_policy(AgentConfig(algo="RecurrentPPO"), dict_space) == "MultiInputLstmPolicy"
    assert resolve_policy(AgentConfig(algo="recurrent-ppo"), box_space) == "MlpLstmPolicy"
    assert resolve_policy(AgentConfig(algo="sac", policy="MlpPolicy"), dict_space) == "MlpPolicy"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"algo": "ppo", "hyperparameters": {"n_step": 64}}, "hyperparameters.n_step: PPO has no parameter 'n_step'"),
        ({"algo": "sac", "hyperparameters": {"n_epochs": 3}}, "hyperparameters.n_epochs: SAC has no parameter"),
        ({"algo": "dqn", "hyperparameters": {"seed": 1}}, "hyperparameters.seed: set it through AgentConfig field seed"),
        ({"algo": "ppo", "hyperparameters": {"policy_kwargs": {}}}, "hyperparameters.policy_kwargs"),
        ({"algo": "ppo", "policy_kwargs": {"net_arhc": [8]}}, "policy_kwargs.net_arhc"),
        ({"algo": "ppo", "policy_kwargs": {"lstm_hidden_size": 8}}, "policy_kwargs.lstm_hidden_size"),
        ({"algo": "ppo", "extractor": "tcn", "extractor_kwargs": {"chanels": 8}}, "extractor_kwargs.chanels: extractor 'tcn' takes no"),
        ({"algo": "ppo", "extractor_kwargs": {"features_dim": 8}}, "extractor_kwargs: given without an extractor"),
        ({"algo": "ppo", "extractor": "tcn", "policy_kwargs": {"features_extractor_class": TCNExtractor}}, "policy_kwargs.features_extractor_class"),
        ({"algo": "ddpg"}, "algo: unknown algorithm 'ddpg'"),
        ({"algo": "ppo", "extractor": "gru"}, "extractor: unknown extractor 'gru'"),
        ({"algo": "ppo", "policy": "LstmPolicy"}, "policy: PPO has no policy 'LstmPolicy'"),
        ({"algo": "ppo", "learning_rate": 0.1}, "learning_rate"),
        ({"algo": "ppo", "device": "gpu0"}, "device: not a torch device"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_parameter(fields: dict, match: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=match):
        AgentConfig(**fields)


def test_algorithm_names_are_forgiving_and_canonical() -> None:
    assert AgentConfig(algo="RecurrentPPO").algo == "recurrent_ppo"
    assert AgentConfig(algo="Maskable-PPO").algo == "maskable_ppo"
    assert AgentConfig(algo="QRDQN").algo == "qrdqn"
    assert AgentConfig(algo="ppo", extractor="TCN_Transformer").extractor == "tcn_transformer"


def test_yaml_conveniences_become_sb3_objects() -> None:
    config = AgentConfig(
        algo="td3",
        hyperparameters={**OFF_POLICY, "learning_rate": "lin_1e-3", "train_freq": [1, "episode"], "action_noise": {"kind": "normal", "sigma": 0.2}},
        policy_kwargs={"net_arch": [8], "activation_fn": "tanh", "optimizer_class": "adamw"},
    )
    model = make_agent(config, TinyMarketEnv("box"))
    assert isinstance(model.learning_rate, LinearSchedule)
    assert model.learning_rate(1.0) == pytest.approx(1e-3) and model.learning_rate(0.0) == 0.0
    assert (model.train_freq.frequency, model.train_freq.unit.value) == (1, "episode")
    assert isinstance(model.action_noise, NormalActionNoise)
    assert model.policy.actor.optimizer.__class__ is th.optim.AdamW
    assert any(isinstance(m, th.nn.Tanh) for m in model.policy.actor.modules())
    with pytest.raises(ValueError, match="hyperparameters.learning_rate"):
        make_agent(AgentConfig(algo="ppo", hyperparameters={"learning_rate": "fast"}), MaskedTinyMarketEnv())
    with pytest.raises(ValueError, match="action_noise.kind"):
        make_agent(AgentConfig(algo="td3", hyperparameters={"action_noise": {"kind": "pink"}}), TinyMarketEnv("box"))


@pytest.mark.parametrize(("algo", "extractor"), [("ppo", "tcn_transformer"), ("sac", "mamba")])
def test_saved_model_with_custom_extractor_loads_and_acts_the_same(tmp_path, algo: str, extractor: str) -> None:
    env = env_for(algo)
    model = make_agent(smoke_config(algo, extractor=extractor, extractor_kwargs=SMALL_EXTRACTOR[extractor]), env)
    model.learn(48)
    model.save(tmp_path / "agent.zip")
    loaded = type(model).load(tmp_path / "agent.zip", device="cpu")
    obs, _ = env.reset(seed=5)
    for _ in range(5):
        a1, _ = model.predict(obs, deterministic=True)
        a2, _ = loaded.predict(obs, deterministic=True)
        np.testing.assert_array_equal(a1, a2)
        obs, *_ = env.step(a1)
    for k, v in params(model).items():
        assert th.equal(v, loaded.policy.state_dict()[k]), k


def _train_twice(config: AgentConfig, make_env, steps: int) -> tuple[dict, dict]:
    states = []
    for _ in range(2):
        model = make_agent(config, make_env())
        model.learn(steps)
        states.append(params(model))
    return states[0], states[1]


@pytest.mark.parametrize(
    ("algo", "extractor"),
    [("ppo", "tcn_transformer"), ("sac", None), ("qrdqn", "cnn"), ("recurrent_ppo", "lstm")],
)
def test_same_seed_gives_same_weights(algo: str, extractor: str | None) -> None:
    """As SB3's own determinism tests: two runs, one seed, identical results (here: every weight)."""
    deterministic = th.are_deterministic_algorithms_enabled()
    th.use_deterministic_algorithms(True)
    try:
        overrides = {"extractor": extractor, "extractor_kwargs": SMALL_EXTRACTOR[extractor]} if extractor else {}
        if algo == "recurrent_ppo":
            overrides["hyperparameters"] = {"n_steps": 32, "batch_size": 16, "n_epochs": 1}
        config = smoke_config(algo, **overrides)
        first, second = _train_twice(config, lambda: env_for(algo), 64)
        assert first.keys() == second.keys()
        different = [k for k in first if not th.equal(first[k], second[k])]
        assert different == []
        # ... and the seed matters: another seed gives other weights.
        other = make_agent(config.model_copy(update={"seed": 4}), env_for(algo))
        other.learn(64)
        assert any(not th.equal(first[k], v) for k, v in params(other).items())
    finally:
        th.use_deterministic_algorithms(deterministic)


def test_every_algorithm_has_vec_defaults_that_build_on_its_vec_env():
    from quant_arena.agents.factory import (
        VEC_TRAINING_DEFAULTS,
        vec_training_defaults,
        with_vec_defaults,
    )

    assert set(VEC_TRAINING_DEFAULTS) == set(ALGORITHMS)
    for algo in ALGORITHMS:
        d = vec_training_defaults(algo.upper())
        action = "box" if ALGORITHMS[algo].action_spaces == (spaces.Box,) else "discrete"
        cls = MaskedTinyMarketEnv if algo == "maskable_ppo" else TinyMarketEnv
        venv = DummyVecEnv([lambda action=action, cls=cls: cls(action)] * d.n_envs)
        model = make_agent(with_vec_defaults(AgentConfig(algo=algo)), venv)
        assert model.n_envs == d.n_envs >= 16, algo  # batched: several envs per step for every algorithm
        for name, value in d.hyperparameters.items():
            assert getattr(model, name) == value or name == "train_freq", (algo, name)
        if "n_steps" in d.hyperparameters:  # on-policy: minibatches tile the rollout
            assert d.hyperparameters["n_steps"] * d.n_envs % d.hyperparameters.get("batch_size", 1) == 0, algo


def test_with_vec_defaults_keeps_the_configs_own_values():
    from quant_arena.agents.factory import with_vec_defaults

    cfg = with_vec_defaults(AgentConfig(algo="ppo", hyperparameters={"batch_size": 512, "ent_coef": 0.01}))
    assert cfg.hyperparameters == {"n_steps": 128, "batch_size": 512, "n_epochs": 4, "ent_coef": 0.01}
    with pytest.raises(ValueError, match="unknown algorithm"):
        from quant_arena.agents.factory import vec_training_defaults

        vec_training_defaults("ppo2")
