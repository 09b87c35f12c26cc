"""Agents: the Stable-Baselines3 / sb3-contrib factory, torch feature extractors, training with
early stopping, ONNX export and the classic baseline policies (no Kedro here).

- :mod:`~quant_arena.agents.factory`: :class:`AgentConfig` and :func:`make_agent`;
- :mod:`~quant_arena.agents.extractors`: the causal feature extractors (MLP, CNN, LSTM, TCN, ...);
- :mod:`~quant_arena.agents.training`: :func:`train_agent`, observation normalisation and
  :func:`greedy_policy`, THE fast deterministic-policy wrapper (exactly
  ``model.predict(obs, deterministic=True)``, without its per-call overhead);
- :mod:`~quant_arena.agents.ensemble`: :class:`EnsemblePolicy`, several trained policies as one;
- :mod:`~quant_arena.agents.export`: ONNX export and torch-free inference;
- :mod:`~quant_arena.agents.baselines`: the baselines every agent is judged against.

Names are imported lazily (PEP 562, :func:`quant_arena.lazy.lazy_face`): importing one module
does not import torch through the others. ``agents/experiment.py`` is not part of this face: it
moves to ``quant_arena.study``.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    # baselines
    "BASELINES": "baselines",
    "Baseline": "baselines",
    "BaselinesConfig": "baselines",
    "BuyAndHold": "baselines",
    "BuyAndHoldBasket": "baselines",
    "DoNothing": "baselines",
    "EqualRiskContribution": "baselines",
    "EqualWeight": "baselines",
    "InverseVolatility": "baselines",
    "KNNBaseline": "baselines",
    "LogisticRegressionBaseline": "baselines",
    "MACrossover": "baselines",
    "Momentum": "baselines",
    "RandomForestBaseline": "baselines",
    "ZScoreMeanReversion": "baselines",
    "asset_returns": "baselines",
    "equal_risk_contribution": "baselines",
    "make_baseline": "baselines",
    "make_baselines": "baselines",
    "next_bar_labels": "baselines",
    "risk_contributions": "baselines",
    "select_baselines": "baselines",
    # ensemble
    "COMBINES": "ensemble",
    "EnsembleError": "ensemble",
    "EnsembleMember": "ensemble",
    "EnsemblePolicy": "ensemble",
    "member_target": "ensemble",
    "select_member": "ensemble",
    # export
    "NumpyPolicy": "export",
    "OnnxPolicy": "export",
    "PolicyFileError": "export",
    "UnsupportedPolicyError": "export",
    "export_onnx": "export",
    "policy_action_module": "export",
    # extractors
    "ACTIVATIONS": "extractors",
    "CAUSAL_EXTRACTORS": "extractors",
    "EXTRACTORS": "extractors",
    "CNNExtractor": "extractors",
    "LSTMExtractor": "extractors",
    "MLPExtractor": "extractors",
    "MambaExtractor": "extractors",
    "SelectiveSSM": "extractors",
    "TCNExtractor": "extractors",
    "TCNTransformerExtractor": "extractors",
    "get_extractor": "extractors",
    "parse_observation_space": "extractors",
    "selective_scan": "extractors",
    # factory
    "ALGORITHMS": "factory",
    "AgentConfig": "factory",
    "AlgorithmSpec": "factory",
    "IncompatibleAgentError": "factory",
    "VEC_TRAINING_DEFAULTS": "factory",
    "VecTrainingDefaults": "factory",
    "check_compatible": "factory",
    "compatible_algorithms": "factory",
    "make_agent": "factory",
    "resolve_policy": "factory",
    "vec_training_defaults": "factory",
    "with_vec_defaults": "factory",
    # training
    "NORMALIZATION_ATTR": "training",
    "LogFn": "training",
    "CURVE_COLUMNS": "training",
    "NormalizedPolicy": "training",
    "ObservationNormalizer": "training",
    "ProgressCallback": "training",
    "TrainingResult": "training",
    "ValidationCallback": "training",
    "attach_normalization": "training",
    "get_normalization": "training",
    "greedy_policy": "training",
    "normalize_observation": "training",
    "observation_normalizer": "training",
    "policy_returns": "training",
    "scaler_normalization": "training",
    "train_agent": "training",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
