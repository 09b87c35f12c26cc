"""One factory from parameters to a Stable-Baselines3 / sb3-contrib model.

:class:`AgentConfig` is the typed form of one agent's block in ``parameters_train_rl.yml``;
:func:`make_agent` builds the model for an environment. Everything that can be checked without
the environment (algorithm name, hyperparameter names, policy-kwarg names, extractor name and
kwargs) is checked when the config is built; the fit between algorithm and the environment's
action/observation spaces is checked by :func:`make_agent` *before* any model is created, with a
message naming the algorithm, the space and the algorithms that would fit.

Example (YAML -> model)::

    agent:
      algo: ppo
      seed: 7
      hyperparameters: {n_steps: 512, batch_size: 64, learning_rate: lin_3e-4}
      policy_kwargs: {net_arch: {pi: [64], vf: [64]}, activation_fn: tanh}
      extractor: tcn_transformer
      extractor_kwargs: {features_dim: 64, d_model: 32}

    model = make_agent(AgentConfig(**params["agent"]), env)
    model.learn(10_000)

Algorithms (:data:`ALGORITHMS`) and the action spaces they accept:

=================  ==============================================  =================================
name               action spaces                                   policy (Dict obs / Box obs)
=================  ==============================================  =================================
ppo, a2c           Discrete, MultiDiscrete, MultiBinary, Box        MultiInputPolicy / MlpPolicy
recurrent_ppo      Discrete, MultiDiscrete, MultiBinary, Box        MultiInputLstmPolicy / MlpLstmPolicy
maskable_ppo       Discrete, MultiDiscrete, MultiBinary + masks     MultiInputPolicy / MlpPolicy
dqn, qrdqn         Discrete                                         MultiInputPolicy / MlpPolicy
sac, td3, tqc      Box                                              MultiInputPolicy / MlpPolicy
=================  ==============================================  =================================

RecurrentPPO and custom extractors: sb3-contrib's LSTM policies accept ``features_extractor_class``
like the others, but the extractor is applied to *each step's* observation (the window ending at
that bar) and the policy's own LSTM (``lstm_hidden_size``, in ``policy_kwargs``) then carries
memory across steps. So ``extractor`` works with ``recurrent_ppo``: the extractor summarises the
window, the LSTM the episode so far. Pairing it with the ``lstm`` extractor stacks two recurrences
(allowed, rarely useful).

Cost of extractors in off-policy algorithms: SAC, TD3 and TQC give the actor and the critics
their own extractor (plus target copies) by default, so a heavy extractor (``tcn_transformer``,
``mamba``) is run several times per gradient step. ``policy_kwargs: {share_features_extractor:
true}`` shares one (trained by the critic loss), which is much cheaper.

MaskablePPO needs the environment to expose ``action_masks()`` (``TradingEnv`` does); the masks are
read by ``MaskablePPO.learn`` automatically and must be passed to ``predict(obs,
action_masks=...)`` at inference.

YAML conveniences: ``learning_rate``/``clip_range``/``clip_range_vf`` accept ``"lin_<value>"``
(linear decay from value to 0, the rl-zoo convention); ``train_freq`` accepts a list
``[1, "episode"]``; ``action_noise`` accepts ``{kind: normal | ornstein_uhlenbeck, sigma: 0.1}``
(sized to the action space); ``policy_kwargs.activation_fn`` and ``optimizer_class`` accept
names (``relu``, ``tanh``, ``adam``, ...).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.utils import is_masking_supported
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import (
    NormalActionNoise,
    OrnsteinUhlenbeckActionNoise,
)
from stable_baselines3.common.utils import LinearSchedule

from quant_arena.agents.extractors import (
    ACTIVATIONS,
    EXTRACTORS,
    MLPExtractor,
    parse_observation_space,
)

__all__ = [
    "ALGORITHMS",
    "AgentConfig",
    "AlgorithmSpec",
    "IncompatibleAgentError",
    "VEC_TRAINING_DEFAULTS",
    "VecTrainingDefaults",
    "check_compatible",
    "compatible_algorithms",
    "make_agent",
    "resolve_policy",
    "vec_training_defaults",
    "with_vec_defaults",
]


class IncompatibleAgentError(ValueError):
    """The chosen algorithm (or extractor) cannot work with this environment's spaces."""


_ON_POLICY_ACTIONS = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)


@dataclass(frozen=True)
class AlgorithmSpec:
    """What the factory needs to know about one algorithm."""

    cls: type[BaseAlgorithm]
    action_spaces: tuple[type[spaces.Space], ...]
    dict_policy: str = "MultiInputPolicy"
    box_policy: str = "MlpPolicy"
    needs_action_masks: bool = False

    @property
    def display_name(self) -> str:
        return self.cls.__name__


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "ppo": AlgorithmSpec(PPO, _ON_POLICY_ACTIONS),
    "a2c": AlgorithmSpec(A2C, _ON_POLICY_ACTIONS),
    "dqn": AlgorithmSpec(DQN, (spaces.Discrete,)),
    "sac": AlgorithmSpec(SAC, (spaces.Box,)),
    "td3": AlgorithmSpec(TD3, (spaces.Box,)),
    "qrdqn": AlgorithmSpec(QRDQN, (spaces.Discrete,)),
    "recurrent_ppo": AlgorithmSpec(RecurrentPPO, _ON_POLICY_ACTIONS, "MultiInputLstmPolicy", "MlpLstmPolicy"),
    "maskable_ppo": AlgorithmSpec(MaskablePPO, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary), needs_action_masks=True),
    "tqc": AlgorithmSpec(TQC, (spaces.Box,)),
}

@dataclass(frozen=True)
class VecTrainingDefaults:
    """How an algorithm is trained fast on the batched ``TradingVecEnv`` (measured, see below).

    ``n_envs``: env copies stepped per vec step; ``hyperparameters``: the algorithm's arguments
    that go with it (rollout length, minibatch, update-to-data ratio). Off-policy ``train_freq``
    counts VEC steps, so ``train_freq=1, gradient_steps=1`` with ``n_envs=64`` is one gradient
    step per 64 env steps.
    """

    n_envs: int
    hyperparameters: dict[str, Any]


#: Per-algorithm vec-env training defaults (``vec_training_defaults``, ``with_vec_defaults``).
#: Chosen by measurement on the walk_forward agent (Dict observation 16 bars x 12 features,
#: ``mlp`` extractor, 1 torch thread; ``python -m benchmarks train``, env-steps per CPU second)
#: and by whether the agent still finds the planted signal of ``tests/agents/_market.py``
#: (8,760 training bars, test Sharpe on fresh bars):
#:
#: - on-policy (ppo, maskable_ppo, a2c, recurrent_ppo): many envs, so one batched env call and
#:   one policy forward pass serve 64 env steps, and large minibatches, so an update is a few big
#:   matrix products instead of hundreds of small ones. PPO 64 envs x 128 steps, minibatch 2048,
#:   4 epochs: 21.9k env-steps per CPU second, 16x SB3's defaults on gym-anytrading (5x
#:   walk_forward's former 4 envs x 512 steps, minibatch 256); bound by the update (58 %), then
#:   by the rollout's forward passes. Planted signal: test Sharpe 9.2 (stopped early at 175k).
#:   a2c and recurrent_ppo follow the same reasoning (not separately measured).
#: - sac, td3, tqc: 64 envs, one gradient step of 512 samples per vec step (update-to-data
#:   1/64, 8 samples per env step): SAC 4.1k env-steps per CPU second, 12x SB3's defaults;
#:   bound by the gradient steps (92 %). Planted signal: test Sharpe 7.3 at 150k steps; half the
#:   updates (train_freq 2, batch 1024) were only 1.2x faster and learned far less (Sharpe 1.3).
#:   td3 and tqc take SAC's settings (not separately measured).
#: - dqn, qrdqn: 64 envs, one gradient step of 256 samples every 4 vec steps: 1 sample per env
#:   step, SB3's own replay ratio (batch 32 every 32 env steps), in 8x fewer, 8x larger batches.
#:   31.2k env-steps per CPU second, 4.5x SB3's defaults on gym-anytrading; rollout 43 % /
#:   update 57 %. Planted signal: test Sharpe 6.1 after 250k steps (validation Sharpe still
#:   rising). One 256-sample step per 16 env steps (16 samples per env step) ran at 0.4x SB3's
#:   defaults.
VEC_TRAINING_DEFAULTS: dict[str, VecTrainingDefaults] = {
    "ppo": VecTrainingDefaults(64, {"n_steps": 128, "batch_size": 2048, "n_epochs": 4}),
    "maskable_ppo": VecTrainingDefaults(64, {"n_steps": 128, "batch_size": 2048, "n_epochs": 4}),
    "a2c": VecTrainingDefaults(64, {"n_steps": 8}),
    "recurrent_ppo": VecTrainingDefaults(32, {"n_steps": 128, "batch_size": 1024, "n_epochs": 4}),
    # SAC/TQC: the entropy coefficient starts at 0.001 (SB3's "auto" starts at 1.0, which swamps
    # per-bar log-return rewards of ~1e-3: on the planted-signal market with these settings and
    # 100k steps, "auto" held |exposure| ~0.007 with test Sharpe -2.9; "auto_0.001" 0.55 and 25.6)
    "sac": VecTrainingDefaults(64, {"learning_starts": 5000, "train_freq": 1, "gradient_steps": 1, "batch_size": 512, "buffer_size": 100_000, "ent_coef": "auto_0.001"}),
    "td3": VecTrainingDefaults(64, {"learning_starts": 5000, "train_freq": 1, "gradient_steps": 1, "batch_size": 512, "buffer_size": 100_000}),
    "tqc": VecTrainingDefaults(64, {"learning_starts": 5000, "train_freq": 1, "gradient_steps": 1, "batch_size": 512, "buffer_size": 100_000, "ent_coef": "auto_0.001"}),
    "dqn": VecTrainingDefaults(
        64,
        {"learning_starts": 5000, "train_freq": 4, "gradient_steps": 1, "batch_size": 256, "buffer_size": 100_000,
         "target_update_interval": 10_000, "exploration_fraction": 0.2},
    ),
    "qrdqn": VecTrainingDefaults(
        64,
        {"learning_starts": 5000, "train_freq": 4, "gradient_steps": 1, "batch_size": 256, "buffer_size": 100_000,
         "target_update_interval": 10_000, "exploration_fraction": 0.2},
    ),
}


def vec_training_defaults(algo: str) -> VecTrainingDefaults:
    """The measured vec-env defaults of ``algo`` (any spelling :data:`ALGORITHMS` accepts)."""
    return VEC_TRAINING_DEFAULTS[_canonical_algo(algo)]


def with_vec_defaults(config: AgentConfig) -> AgentConfig:
    """``config`` with its algorithm's vec-env hyperparameters under its own (its own values win)."""
    defaults = vec_training_defaults(config.algo).hyperparameters
    return config.model_copy(update={"hyperparameters": {**defaults, **config.hyperparameters}})


# "RecurrentPPO", "recurrent-ppo", "maskableppo" ... all map to the canonical key.
_ALIASES = {k.replace("_", ""): k for k in ALGORITHMS}

# Arguments of the algorithms' __init__ that AgentConfig sets through its own fields.
_RESERVED = {
    "policy": "policy",
    "env": "(the env argument of make_agent)",
    "seed": "seed",
    "device": "device",
    "verbose": "verbose",
    "policy_kwargs": "policy_kwargs",
    "_init_setup_model": "(internal to Stable-Baselines3)",
}

_OPTIMIZERS: dict[str, type[th.optim.Optimizer]] = {
    "adam": th.optim.Adam,
    "adamw": th.optim.AdamW,
    "rmsprop": th.optim.RMSprop,
    "sgd": th.optim.SGD,
}

_SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")


def _init_params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


def _canonical_algo(name: str) -> str:
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise ValueError(f"algo: unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return _ALIASES[key]


def _policy_param_names(spec: AlgorithmSpec) -> set[str]:
    names: set[str] = set()
    for policy_cls in spec.cls.policy_aliases.values():
        names.update(_init_params(policy_cls.__init__))
    return names - {"observation_space", "action_space", "lr_schedule"}


class AgentConfig(BaseModel):
    """One agent: algorithm, its hyperparameters, policy kwargs, feature extractor, seed, device.

    Unknown fields, unknown algorithm/extractor names, hyperparameters the algorithm's ``__init__``
    does not take, policy kwargs its policies do not take and extractor kwargs the extractor does
    not take are all rejected here, with the offending name in the message.
    """

    model_config = ConfigDict(extra="forbid")

    algo: str = Field("ppo", description="algorithm name, one of ALGORITHMS (case/underscore-insensitive)")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the algorithm's __init__")
    policy: str | None = Field(None, description="policy name; default picks MultiInput*/Mlp* from the observation space")
    policy_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the policy (net_arch, activation_fn, ...)")
    extractor: str | None = Field(None, description="feature extractor name, one of EXTRACTORS; None keeps SB3's default")
    extractor_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the extractor (features_dim, ...)")
    seed: int = Field(0, ge=0, description="seed for torch, numpy, the action space and the env")
    device: str = Field("cpu", description="torch device; cpu is the deterministic, tested choice")
    verbose: int = Field(0, ge=0, le=2)

    @field_validator("algo")
    @classmethod
    def _known_algo(cls, value: str) -> str:
        return _canonical_algo(value)

    @field_validator("extractor")
    @classmethod
    def _known_extractor(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in EXTRACTORS:
            raise ValueError(f"extractor: unknown extractor {value!r}; choose one of {sorted(EXTRACTORS)}")
        return value.lower()

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "auto":
            try:
                th.device(value)
            except RuntimeError:
                raise ValueError(f"device: not a torch device: {value!r} (use cpu, cuda, cuda:0 or auto)") from None
        return value

    @model_validator(mode="after")
    def _known_arguments(self) -> AgentConfig:
        spec = ALGORITHMS[self.algo]
        accepted = set(_init_params(spec.cls.__init__))
        for name in self.hyperparameters:
            if name in _RESERVED:
                raise ValueError(f"hyperparameters.{name}: set it through AgentConfig field {_RESERVED[name]}, not in hyperparameters")
            if name not in accepted:
                valid = sorted(accepted - set(_RESERVED))
                raise ValueError(f"hyperparameters.{name}: {spec.display_name} has no parameter {name!r}; valid: {valid}")
        policy_names = _policy_param_names(spec)
        for name in self.policy_kwargs:
            if name not in policy_names:
                raise ValueError(f"policy_kwargs.{name}: {spec.display_name}'s policies take no {name!r}; valid: {sorted(policy_names)}")
        if self.extractor is not None:
            clash = {"features_extractor_class", "features_extractor_kwargs"} & set(self.policy_kwargs)
            if clash:
                raise ValueError(f"policy_kwargs.{sorted(clash)[0]}: set the extractor with `extractor`/`extractor_kwargs`, not both")
            ext_names = set(_init_params(EXTRACTORS[self.extractor].__init__)) - {"observation_space"}
            for name in self.extractor_kwargs:
                if name not in ext_names:
                    raise ValueError(f"extractor_kwargs.{name}: extractor {self.extractor!r} takes no {name!r}; valid: {sorted(ext_names)}")
        elif self.extractor_kwargs:
            raise ValueError("extractor_kwargs: given without an extractor; set `extractor` too")
        if self.policy is not None and self.policy not in spec.cls.policy_aliases:
            raise ValueError(f"policy: {spec.display_name} has no policy {self.policy!r}; choose one of {sorted(spec.cls.policy_aliases)}")
        return self


def compatible_algorithms(action_space: spaces.Space) -> list[str]:
    """Names of the algorithms whose action spaces include ``action_space`` (ignoring masks)."""
    return [name for name, spec in ALGORITHMS.items() if isinstance(action_space, spec.action_spaces)]


def check_compatible(algo: str, env: Any) -> None:
    """Raise :class:`IncompatibleAgentError` when ``algo`` cannot act in ``env``; silent otherwise.

    ``env`` is a ``gymnasium.Env`` or an SB3 ``VecEnv``. Checks the action-space type and, for
    MaskablePPO, that the env exposes ``action_masks()``.
    """
    name = _canonical_algo(algo)
    spec = ALGORITHMS[name]
    action_space = env.action_space
    if not isinstance(action_space, spec.action_spaces):
        needed = " or ".join(t.__name__ for t in spec.action_spaces)
        fits = compatible_algorithms(action_space)
        raise IncompatibleAgentError(
            f"algo {name!r} ({spec.display_name}) needs a {needed} action space, but the env's action space is "
            f"{action_space}. Choose another action scheme, or an algorithm that fits this one: {fits}"
        )
    if spec.needs_action_masks and not is_masking_supported(env):
        raise IncompatibleAgentError(
            f"algo {name!r} ({spec.display_name}) needs an env with an action_masks() method returning the valid actions; "
            f"{type(env).__name__} has none (use ppo, or an env/action scheme that exposes masks)"
        )


def resolve_policy(config: AgentConfig, observation_space: spaces.Space) -> str:
    """The policy name for ``config`` on ``observation_space``: the explicit one, else Dict -> MultiInput*, Box -> Mlp*."""
    spec = ALGORITHMS[config.algo]
    if config.policy is not None:
        return config.policy
    if isinstance(observation_space, spaces.Dict):
        return spec.dict_policy
    if isinstance(observation_space, spaces.Box):
        return spec.box_policy
    raise IncompatibleAgentError(f"observation space {observation_space} is neither a Dict nor a Box; no default policy for it")


def _schedule(name: str, value: Any) -> Any:
    if isinstance(value, str):
        if not value.startswith("lin_"):
            raise ValueError(f"hyperparameters.{name}: expected a number or 'lin_<initial value>', got {value!r}")
        try:
            start = float(value[4:])
        except ValueError:
            raise ValueError(f"hyperparameters.{name}: expected 'lin_<initial value>', got {value!r}") from None
        return LinearSchedule(start, 0.0, 1.0)
    return value


def _action_noise(value: Any, action_space: spaces.Space) -> Any:
    if not isinstance(value, dict):
        return value
    if not isinstance(action_space, spaces.Box):
        raise IncompatibleAgentError("hyperparameters.action_noise: action noise needs a Box action space")
    cfg = dict(value)
    kind = str(cfg.pop("kind", "normal")).lower()
    sigma = float(cfg.pop("sigma", 0.1))
    theta = cfg.pop("theta", None)
    if cfg:
        raise ValueError(f"hyperparameters.action_noise.{sorted(cfg)[0]}: unknown key; use kind, sigma (and theta for ornstein_uhlenbeck)")
    n = int(np.prod(action_space.shape))
    mean, sig = np.zeros(n), sigma * np.ones(n)
    if kind == "normal":
        return NormalActionNoise(mean, sig)
    if kind in ("ornstein_uhlenbeck", "ou"):
        return OrnsteinUhlenbeckActionNoise(mean, sig, **({"theta": float(theta)} if theta is not None else {}))
    raise ValueError(f"hyperparameters.action_noise.kind: unknown noise {kind!r}; choose normal or ornstein_uhlenbeck")


def _policy_kwargs(config: AgentConfig, observation_space: spaces.Space) -> dict[str, Any]:
    kwargs = dict(config.policy_kwargs)
    act = kwargs.get("activation_fn")
    if isinstance(act, str):
        if act.lower() not in ACTIVATIONS:
            raise ValueError(f"policy_kwargs.activation_fn: unknown activation {act!r}; choose one of {sorted(ACTIVATIONS)}")
        kwargs["activation_fn"] = ACTIVATIONS[act.lower()]
    opt = kwargs.get("optimizer_class")
    if isinstance(opt, str):
        if opt.lower() not in _OPTIMIZERS:
            raise ValueError(f"policy_kwargs.optimizer_class: unknown optimizer {opt!r}; choose one of {sorted(_OPTIMIZERS)}")
        kwargs["optimizer_class"] = _OPTIMIZERS[opt.lower()]
    if config.extractor is not None:
        ext_cls = EXTRACTORS[config.extractor]
        if ext_cls is not MLPExtractor:
            try:
                parse_observation_space(observation_space)
            except ValueError as err:
                raise IncompatibleAgentError(
                    f"extractor {config.extractor!r} needs a Dict(market=(window, n_features), account=(n,)) or 2-D Box "
                    f"observation: {err}"
                ) from None
        kwargs["features_extractor_class"] = ext_cls
        kwargs["features_extractor_kwargs"] = dict(config.extractor_kwargs)
    return kwargs


def make_agent(config: AgentConfig, env: Any) -> BaseAlgorithm:
    """Build the configured SB3 / sb3-contrib model for ``env`` (a ``gymnasium.Env`` or a ``VecEnv``).

    Raises :class:`IncompatibleAgentError` before creating anything when the algorithm does not fit
    the env's action space (or MaskablePPO has no ``action_masks()``), or when a sequence extractor
    is given an observation it cannot read. The model is seeded with ``config.seed``: on CPU, the
    same config, env and seed give the same weights after the same ``learn`` call.
    """
    if not isinstance(config, AgentConfig):
        config = AgentConfig.model_validate(config)
    spec = ALGORITHMS[config.algo]
    check_compatible(config.algo, env)
    policy = resolve_policy(config, env.observation_space)
    hyperparameters = dict(config.hyperparameters)
    for name in _SCHEDULED:
        if name in hyperparameters:
            hyperparameters[name] = _schedule(name, hyperparameters[name])
    if isinstance(hyperparameters.get("train_freq"), list):
        hyperparameters["train_freq"] = tuple(hyperparameters["train_freq"])
    if "action_noise" in hyperparameters:
        hyperparameters["action_noise"] = _action_noise(hyperparameters["action_noise"], env.action_space)
    return spec.cls(
        policy,
        env,
        policy_kwargs=_policy_kwargs(config, env.observation_space),
        seed=config.seed,
        device=config.device,
        verbose=config.verbose,
        **hyperparameters,
    )
