"""Search spaces: bad ones fail before any trial naming the parameter; values land in the configs."""

from __future__ import annotations

import optuna
import pytest
import torch
from pydantic import ValidationError

from quant_arena.agents.factory import AgentConfig
from quant_arena.envs.config import TradingEnvConfig
from quant_arena.study import TuneConfig
from quant_arena.study.walk_forward import apply_tuned_params, tuned_env_params
from quant_arena.tuning import (
    apply_agent_params,
    mask_url,
    resolve_trial,
    suggest,
)
from quant_arena.tuning.space import check_space_fits
from tests._project import conf_parameters

from . import _data


@pytest.mark.parametrize(
    ("name", "spec", "needle"),
    [
        ("learning_rate", {"type": "float", "low": 1e-3, "high": 1e-4}, "low=0.001 > high=0.0001"),
        ("gamma", {"type": "float", "low": 0.9, "high": 0.9}, "empty range"),
        ("ent_coef", {"type": "float", "low": 0.0, "high": 0.1, "log": True}, "log scale needs positive bounds"),
        ("learning_rat", {"type": "float", "low": 1e-4, "high": 1e-3}, "unknown parameter 'learning_rat'"),
        ("reward.sharpe", {"type": "float", "low": 0.0, "high": 1.0}, "unknown parameter"),
        ("batch_size", {"type": "categorical", "choices": []}, "non-empty `choices`"),
        ("net_depth", {"type": "int", "low": 1.5, "high": 3}, "whole numbers"),
        ("n_steps", {"type": "int", "low": 64}, "needs both `low` and `high`"),
    ],
)
def test_bad_space_names_the_parameter(name: str, spec: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        TuneConfig.model_validate({"search_space": {name: spec}})
    text = str(err.value)
    assert f"search_space.{name}" in text and needle in text


def test_window_beyond_the_purge_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"search_space.window: high = 64 exceeds folds.observation_window"):
        TuneConfig.model_validate({"search_space": {"window": {"type": "int", "low": 8, "high": 64}}})


def test_the_shipped_parameters_validate() -> None:
    block = conf_parameters()["tune"]
    cfg = TuneConfig.model_validate(block)
    assert {"learning_rate", "batch_size", "n_steps", "gamma", "ent_coef", "net_width", "extractor", "window",
            "n_features", "reward.drawdown_penalty"} <= set(cfg.search_space.root)


def test_hyperparameter_the_algorithm_lacks_fails_in_the_preflight() -> None:
    cfg = TuneConfig.model_validate(_data.params(
        agent={"algo": "dqn"}, search_space={"clip_range": {"type": "float", "low": 0.1, "high": 0.3}}))
    with pytest.raises(ValueError, match=r"(?s)search_space.clip_range: .*DQN has no parameter .clip_range."):
        check_space_fits(cfg.search_space, cfg.agent, cfg.env, ["f_a", "f_b"], {}, 2)


def test_n_features_beyond_the_ranking_fails_in_the_preflight() -> None:
    cfg = TuneConfig.model_validate(_data.params(search_space={"n_features": {"type": "int", "low": 1, "high": 9}}))
    with pytest.raises(ValueError, match=r"search_space.n_features: 9 features asked, the ranking holds 3"):
        check_space_fits(cfg.search_space, cfg.agent, cfg.env, ["f_a", "f_b", "f_c"], {}, 2)


def test_trial_values_reach_agent_env_and_features() -> None:
    cfg = TuneConfig.model_validate(_data.params(search_space={
        "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True},
        "batch_size": {"type": "categorical", "choices": [16, 32]},
        "net_width": {"type": "categorical", "choices": [8, 16]},
        "net_depth": {"type": "int", "low": 1, "high": 3},
        "extractor": {"type": "categorical", "choices": ["mlp", "cnn"]},
        "features_dim": {"type": "int", "low": 8, "high": 16},
        "window": {"type": "int", "low": 4, "high": 8},
        "reward.drawdown_penalty": {"type": "float", "low": 0.0, "high": 1.0},
        "n_features": {"type": "int", "low": 1, "high": 3},
    }))
    values = {"learning_rate": 5e-4, "batch_size": 16, "net_width": 16, "net_depth": 2, "extractor": "cnn",
              "features_dim": 12, "window": 6, "reward.drawdown_penalty": 0.25, "n_features": 2}
    params = suggest(optuna.trial.FixedTrial(values), cfg.search_space)
    assert params == values
    setup = resolve_trial(params, cfg.agent, cfg.env, ["f_a", "f_b", "f_c"], {}, 2)
    assert isinstance(setup.agent, AgentConfig) and isinstance(setup.env, TradingEnvConfig)
    assert setup.agent.hyperparameters["learning_rate"] == 5e-4 and setup.agent.hyperparameters["batch_size"] == 16
    assert setup.agent.hyperparameters["n_steps"] == 32  # untouched base value
    assert setup.agent.policy_kwargs["net_arch"] == {"pi": [16, 16], "vf": [16, 16]}
    assert setup.agent.extractor == "cnn" and setup.agent.extractor_kwargs == {"features_dim": 12}  # mlp's `hidden` dropped
    assert setup.env.window == 6 and setup.env.reward == {"log_return": 1.0, "drawdown_penalty": 0.25}
    assert setup.columns == ["f_a", "f_b"]


def test_apply_tuned_params_for_walk_forward() -> None:
    block = {"algo": "ppo", "seed": 3, "hyperparameters": {"n_steps": 512, "gae_lambda": 0.9, "learning_rate": 3e-4},
             "policy_kwargs": {"net_arch": {"pi": [64], "vf": [64]}}, "extractor": "mlp", "extractor_kwargs": {"features_dim": 64}}
    artifact = {"params": {"learning_rate": 1e-4, "gamma": 0.95, "net_width": 32, "window": 8, "n_features": 4},
                "agent": {"algo": "ppo"}}
    out = apply_tuned_params(block, artifact)
    assert out["hyperparameters"] == {"n_steps": 512, "gae_lambda": 0.9, "learning_rate": 1e-4, "gamma": 0.95}
    assert out["policy_kwargs"]["net_arch"] == {"pi": [32], "vf": [32]} and out["seed"] == 3
    assert block["hyperparameters"]["learning_rate"] == 3e-4  # input not mutated
    assert apply_tuned_params(block, artifact["params"]) == out  # the bare params mapping works too
    AgentConfig.model_validate(out)
    assert tuned_env_params({"window": 30, "reward": {"log_return": 1.0}}, artifact)["window"] == 8
    with pytest.raises(ValueError, match="tuned a 'dqn' agent"):
        apply_tuned_params(block, {"params": {}, "agent": {"algo": "dqn"}})


@pytest.mark.parametrize(("algo", "arch"), [("ppo", {"pi": [16, 16], "vf": [16, 16]}), ("sac", {"pi": [16, 16], "qf": [16, 16]}),
                                             ("td3", {"pi": [16, 16], "qf": [16, 16]}), ("dqn", [16, 16])])
def test_network_size_takes_each_algorithms_net_arch_shape(algo: str, arch) -> None:
    """SB3 builds SAC/TD3 critics from net_arch["qf"] and DQN from a plain list: the tuned width must reach them."""
    from quant_arena.agents.factory import make_agent
    from quant_arena.envs import TradingEnv
    from tests._markets import env_market

    out = apply_agent_params({"algo": algo}, {"net_width": 16, "net_depth": 2})
    assert out["policy_kwargs"]["net_arch"] == arch
    scheme = "discrete_targets" if algo == "dqn" else "continuous"
    env = TradingEnv(env_market(300), TradingEnvConfig(window=4, action_scheme=scheme, observation="flat"))
    model = make_agent(AgentConfig.model_validate(out), env)
    critic = model.policy.q_net if algo == "dqn" else (model.policy.critic if algo != "ppo" else model.policy.mlp_extractor.value_net)
    widths = [m.out_features for m in critic.modules() if isinstance(m, torch.nn.Linear)]
    assert widths[:2] == [16, 16]


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql+psycopg2://optuna:s3cr3t@db:5432/optuna") == "postgresql+psycopg2://optuna:***@db:5432/optuna"
    assert "s3cr3t" not in mask_url("postgresql://u:s3cr3t@h/db")
    assert mask_url("sqlite:///data/06_models/optuna.db") == "sqlite:///data/06_models/optuna.db"
    assert "s3cr3t" not in mask_url("weird://u:s3cr3t@host")


def test_tuning_library_does_not_import_kedro() -> None:
    import ast
    from pathlib import Path

    import quant_arena.tuning

    for path in Path(quant_arena.tuning.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "kedro" for n in names), f"{path.name} imports kedro"
