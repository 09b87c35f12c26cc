"""ONNX export of a trained policy's deterministic action, and fast inference without torch.

:func:`export_onnx` writes the function ``observation -> action`` that ``model.predict(obs,
deterministic=True)`` computes: observation preprocessing, the feature extractor (any of
:mod:`quant_arena.agents.extractors` or SB3's own), the policy head and the action selection
(argmax for discrete actions, the distribution's mode clipped to the action bounds for continuous
ones). When the model carries ``vec_normalize`` statistics (see
:mod:`quant_arena.agents.training`) the observation normalisation is part of the graph, so the
exported policy takes RAW observations.

:class:`OnnxPolicy` runs it with onnxruntime behind SB3's ``predict`` signature::

    export_onnx(model, "policy.onnx")
    policy = OnnxPolicy("policy.onnx")
    action, _ = policy.predict(obs)          # one observation (dict of arrays) or a batch

:class:`NumpyPolicy` is the same function as plain numpy matrix products, extracted from the
weights of a policy made only of ``Linear`` layers and element-wise activations (the ``mlp``
extractor or SB3's flatten/combined extractors, an MLP head): the lowest-latency path for one
observation (no runtime call overhead at all).

Supported: PPO, A2C, MaskablePPO (the masks are an extra ``action_masks`` input), DQN, QRDQN,
SAC, TD3, TQC; Discrete, MultiDiscrete and Box action spaces. RecurrentPPO is refused (its action
depends on a hidden state carried across steps, which this stateless function does not model).

The ONNX graph is written by torch's TorchScript-based exporter (``dynamo=False``): it needs no
extra package (the dynamo exporter needs ``onnxscript``) and handles the LSTM and Transformer
extractors. Inputs are named after the observation's keys (``market``, ``account``) or ``obs``
for a Box observation, with a dynamic batch dimension; the output is ``action``. The model's
action space and input layout are stored in the ONNX metadata (``quant_arena``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from torch import nn

__all__ = ["NumpyPolicy", "OnnxPolicy", "PolicyFileError", "UnsupportedPolicyError", "export_onnx", "policy_action_module"]

_META_KEY = "quant_arena"


class UnsupportedPolicyError(ValueError):
    """The model's policy (or action space) cannot be exported as a stateless action function."""


class PolicyFileError(ValueError):
    """An ``.onnx`` policy file cannot be used: missing, unreadable, not a valid ONNX model, or
    not written by :func:`export_onnx`. The message names the file and the cause in the
    project's own words (the onnxruntime message, whose wording changes between releases, is
    kept as ``__cause__``)."""


# --------------------------------------------------------------------------- torch wrapper


def _space_info(action_space: spaces.Space) -> dict[str, Any]:
    if isinstance(action_space, spaces.Discrete):
        return {"type": "discrete", "n": int(action_space.n), "start": int(action_space.start)}
    if isinstance(action_space, spaces.MultiDiscrete):
        return {"type": "multidiscrete", "nvec": [int(x) for x in np.asarray(action_space.nvec).reshape(-1)]}
    if isinstance(action_space, spaces.Box):
        return {
            "type": "box",
            "shape": list(action_space.shape),
            "low": np.asarray(action_space.low, dtype=np.float64).reshape(-1).tolist(),
            "high": np.asarray(action_space.high, dtype=np.float64).reshape(-1).tolist(),
        }
    raise UnsupportedPolicyError(f"action space {action_space} is not supported (Discrete, MultiDiscrete or Box)")


def _obs_layout(observation_space: spaces.Space) -> list[tuple[str, tuple[int, ...]]]:
    if isinstance(observation_space, spaces.Dict):
        out = []
        for key, sub in observation_space.spaces.items():
            if not isinstance(sub, spaces.Box):
                raise UnsupportedPolicyError(f"observation key {key!r}: only Box sub-spaces are supported, got {sub}")
            out.append((key, tuple(int(d) for d in sub.shape)))
        return out
    if isinstance(observation_space, spaces.Box):
        return [("obs", tuple(int(d) for d in observation_space.shape))]
    raise UnsupportedPolicyError(f"observation space {observation_space} is not supported (Box or Dict of Box)")


def _vec_normalize(model: Any) -> Mapping[str, Any] | None:
    stats = getattr(model, "quant_arena_normalization", None)
    if not stats:
        return None
    return stats if stats.get("kind") == "vec_normalize" else stats.get("vec_normalize")


class _PolicyAction(nn.Module):
    """``(*observation parts[, action_masks]) -> action``: the deterministic action of an SB3 policy."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        algo = type(model).__name__
        if algo == "RecurrentPPO":
            raise UnsupportedPolicyError(
                "RecurrentPPO cannot be exported as a stateless policy: its action depends on the LSTM state carried "
                "across steps; export a feed-forward agent (ppo, a2c, ...) or run the model itself"
            )
        self.policy = model.policy
        self.algo = algo
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.layout = _obs_layout(self.observation_space)
        self.keys = [k for k, _ in self.layout]
        self.is_dict = isinstance(self.observation_space, spaces.Dict)
        self.masked = algo == "MaskablePPO"
        self.info = _space_info(self.action_space)
        if self.masked and self.info["type"] == "box":
            raise UnsupportedPolicyError("MaskablePPO with a Box action space is not a valid combination")
        if self.info["type"] == "box":
            self.register_buffer("low", th.as_tensor(np.asarray(self.action_space.low, np.float32)).reshape(1, -1))
            self.register_buffer("high", th.as_tensor(np.asarray(self.action_space.high, np.float32)).reshape(1, -1))
        # observation normalisation (VecNormalize statistics saved with the model)
        self.norm_keys: list[str] = []
        vn = _vec_normalize(model)
        if vn is not None:
            eps = float(vn["epsilon"])
            self.clip_obs = float(vn["clip_obs"])
            for key in self.keys:
                s = vn["obs_rms"].get("" if key == "obs" and not self.is_dict else key)
                if s is None:
                    continue
                mean = th.as_tensor(np.asarray(s["mean"], np.float32))
                std = th.sqrt(th.as_tensor(np.asarray(s["var"], np.float32)) + eps)
                self.register_buffer(f"mean_{key}", mean)
                self.register_buffer(f"std_{key}", std)
                self.norm_keys.append(key)
        if all(hasattr(self.policy, a) for a in ("mlp_extractor", "action_net", "pi_features_extractor")):
            # SB3's ActorCriticPolicy and sb3-contrib's MaskableActorCriticPolicy (same layout)
            self.kind = "actor_critic"
        elif algo in ("DQN", "QRDQN"):
            self.kind = algo.lower()
            if self.info["type"] != "discrete":
                raise UnsupportedPolicyError(f"{algo} needs a Discrete action space")
        elif algo in ("SAC", "TD3", "TQC"):
            self.kind = "actor"
            if self.info["type"] != "box":
                raise UnsupportedPolicyError(f"{algo} needs a Box action space")
        else:
            raise UnsupportedPolicyError(f"export of {algo} policies ({type(self.policy).__name__}) is not supported")

    def _obs(self, parts: tuple[th.Tensor, ...]) -> Any:
        obs = {}
        for key, part in zip(self.keys, parts, strict=False):
            x = part
            if key in self.norm_keys:
                x = th.clamp((x - getattr(self, f"mean_{key}")) / getattr(self, f"std_{key}"), -self.clip_obs, self.clip_obs)
            obs[key] = x
        return obs if self.is_dict else obs["obs"]

    def _discrete(self, logits: th.Tensor, masks: th.Tensor | None) -> th.Tensor:
        if masks is not None:
            logits = th.where(masks > 0.5, logits, th.full_like(logits, -1e8))  # MaskableCategorical's HUGE_NEG
        if self.info["type"] == "discrete":
            return th.argmax(th.softmax(logits, dim=1), dim=1) + self.info["start"]
        outs = [th.argmax(th.softmax(part, dim=1), dim=1) for part in th.split(logits, self.info["nvec"], dim=1)]
        return th.stack(outs, dim=1)

    def forward(self, *inputs: th.Tensor) -> th.Tensor:
        n = len(self.keys)
        obs = self._obs(inputs[:n])
        masks = inputs[n] if self.masked else None
        p = self.policy
        if self.kind == "actor_critic":
            features = p.extract_features(obs, p.pi_features_extractor) if not p.share_features_extractor else p.extract_features(obs)
            latent = p.mlp_extractor.forward_actor(features)
            out = p.action_net(latent)
            if self.info["type"] != "box":
                return self._discrete(out, masks)
            if p.squash_output:
                out = th.tanh(out)
                return self.low + 0.5 * (out + 1.0) * (self.high - self.low)
            return th.clamp(out, self.low, self.high)
        if self.kind == "dqn":
            return th.argmax(p.q_net(obs), dim=1)
        if self.kind == "qrdqn":
            return th.argmax(p.quantile_net(obs).mean(dim=1), dim=1)
        # SAC / TD3 / TQC: the actor's deterministic action in [-1, 1], rescaled to the bounds
        out = p.actor(obs, deterministic=True) if self.algo in ("SAC", "TQC") else p.actor(obs)
        return self.low + 0.5 * (out + 1.0) * (self.high - self.low)


def policy_action_module(model: Any) -> nn.Module:
    """The torch module ``(*observation parts[, action_masks]) -> action`` that is exported."""
    return _PolicyAction(model).eval()


def export_onnx(model: Any, path: str | Path, opset_version: int = 17) -> Path:
    """Write ``model``'s deterministic action function to ``path`` (ONNX); returns the path.

    Raises :class:`UnsupportedPolicyError` for RecurrentPPO, unsupported spaces and ensembles
    (:class:`quant_arena.agents.ensemble.EnsemblePolicy`: no network of its own).
    """
    if hasattr(model, "members") and hasattr(model, "combine"):
        raise UnsupportedPolicyError(
            f"ensemble {getattr(model, 'name', '?')!r} ({model.combine} of {[m.name for m in model.members]}): an ensemble has no "
            "network of its own, so no ONNX export (and no paper trading); export its members"
        )
    module = policy_action_module(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(module.parameters()).device
    example = [th.zeros((2, *shape), dtype=th.float32, device=device) for _, shape in module.layout]
    names = list(module.keys)
    if module.masked:
        n_mask = module.info["n"] if module.info["type"] == "discrete" else int(sum(module.info["nvec"]))
        example.append(th.ones((2, n_mask), dtype=th.float32, device=device))
        names.append("action_masks")
    dynamic = {name: {0: "batch"} for name in names}
    dynamic["action"] = {0: "batch"}
    was_training = model.policy.training
    model.policy.set_training_mode(False)
    # nn.TransformerEncoderLayer's inference fast path is a fused op ONNX has no mapping for;
    # the regular path computes the same function
    fastpath = th.backends.mha.get_fastpath_enabled()
    th.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), th.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer warnings
            th.onnx.export(
                module,
                tuple(example),
                str(path),
                dynamo=False,
                input_names=names,
                output_names=["action"],
                dynamic_axes=dynamic,
                opset_version=opset_version,
                do_constant_folding=True,
            )
    finally:
        th.backends.mha.set_fastpath_enabled(fastpath)
        model.policy.set_training_mode(was_training)
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "algo": module.algo,
        "inputs": [[k, list(s)] for k, s in module.layout],
        "dict_obs": module.is_dict,
        "masked": module.masked,
        "action_space": module.info,
        "normalized_obs": bool(module.norm_keys),
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = _META_KEY, json.dumps(meta)
    onnx.save(proto, str(path))
    return path


# --------------------------------------------------------------------------- inference


class _Predictor:
    """Shared ``predict`` plumbing: batch detection, input layout, action post-processing."""

    layout: list[tuple[str, tuple[int, ...]]]
    dict_obs: bool
    masked: bool
    space: dict[str, Any]

    def _setup(self, meta: Mapping[str, Any]) -> None:
        self.layout = [(k, tuple(s)) for k, s in meta["inputs"]]
        self.dict_obs = bool(meta["dict_obs"])
        self.masked = bool(meta["masked"])
        self.space = dict(meta["action_space"])
        self._discrete = self.space["type"] == "discrete"
        if self.space["type"] == "box":
            self._box_shape = tuple(self.space["shape"])

    def _parts(self, observation: Any) -> tuple[list[np.ndarray], bool]:
        """Float32 arrays in input order, each with a batch dimension, and whether the input was batched."""
        if self.dict_obs:
            if not isinstance(observation, Mapping):
                raise TypeError(f"expected a dict observation with keys {[k for k, _ in self.layout]}")
            raw = [observation[k] for k, _ in self.layout]
        else:
            raw = [observation]
        parts = []
        batched = False
        for (key, shape), x in zip(self.layout, raw, strict=True):
            a = np.asarray(x, dtype=np.float32)
            if a.shape == shape:
                a = a[None]
            elif a.ndim == len(shape) + 1 and a.shape[1:] == shape:
                batched = True
            else:
                raise ValueError(f"observation {key!r} has shape {a.shape}; expected {shape} or (batch, *{shape})")
            parts.append(a)
        return parts, batched

    def _finish(self, action: np.ndarray, batched: bool) -> np.ndarray:
        if self.space["type"] == "box":
            action = action.reshape((-1, *self._box_shape)).astype(np.float32, copy=False)
        else:
            action = action.astype(np.int64, copy=False)
        return action if batched else action[0]


class OnnxPolicy(_Predictor):
    """An exported policy run by onnxruntime, with SB3's ``predict`` signature.

    Args:
        path: the ``.onnx`` file written by :func:`export_onnx`.
        intra_op_num_threads: onnxruntime threads (1: lowest latency for one observation).
    """

    def __init__(self, path: str | Path, intra_op_num_threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(intra_op_num_threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = Path(path)
        if not path.is_file():
            raise PolicyFileError(f"{path}: no such policy file (write one with quant_arena.agents.export_onnx)")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types and wording vary by release
            raise PolicyFileError(
                f"{path}: not a loadable ONNX model (onnxruntime could not build an inference session: "
                f"{type(exc).__name__}); re-export it with quant_arena.agents.export_onnx"
            ) from exc
        meta = self.session.get_modelmeta().custom_metadata_map.get(_META_KEY)
        if meta is None:
            raise PolicyFileError(f"{path}: not written by quant_arena.agents.export_onnx (no '{_META_KEY}' metadata)")
        try:
            self.metadata = json.loads(meta)
        except json.JSONDecodeError as exc:
            raise PolicyFileError(f"{path}: its '{_META_KEY}' metadata is not valid JSON ({exc.msg})") from exc
        self._setup(self.metadata)
        self._names = [k for k, _ in self.layout] + (["action_masks"] if self.masked else [])
        self._run = self.session.run
        self._out = ["action"]
        self._bind_single()

    def _bind_single(self) -> None:
        """Pre-bound input/output buffers for one observation (the low-latency path)."""
        self._buffers = [np.zeros((1, *shape), dtype=np.float32) for _, shape in self.layout]
        if self.masked:
            self._mask_buffer = np.ones((1, self._n_mask()), dtype=np.float32)
        if self.space["type"] == "box":
            self._out_buffer = np.zeros((1, int(np.prod(self._box_shape))), dtype=np.float32)
        elif self.space["type"] == "multidiscrete":
            self._out_buffer = np.zeros((1, len(self.space["nvec"])), dtype=np.int64)
        else:
            self._out_buffer = np.zeros((1,), dtype=np.int64)
        io = self.session.io_binding()
        bufs = [*self._buffers, *([self._mask_buffer] if self.masked else [])]
        for name, buf in zip(self._names, bufs, strict=True):
            io.bind_input(name, "cpu", 0, np.float32, buf.shape, buf.ctypes.data)
        out = self._out_buffer
        io.bind_output("action", "cpu", 0, out.dtype, out.shape, out.ctypes.data)
        self._io = io
        self._run_bound = self.session.run_with_iobinding
        self._single_ndim = [len(shape) for _, shape in self.layout]
        self._single_shape = [shape for _, shape in self.layout]
        self._keys = [k for k, _ in self.layout]

    def _predict_single(self, observation: Any, action_masks: np.ndarray | None) -> np.ndarray | None:
        """One unbatched observation through the bound buffers; None when it is not one."""
        if self.dict_obs:
            if not isinstance(observation, Mapping):
                return None
            raw = [observation[k] for k in self._keys]
        else:
            raw = [observation]
        for x, buf, shape in zip(raw, self._buffers, self._single_shape, strict=True):
            if np.shape(x) != shape:
                return None
            buf[0] = x
        if self.masked:
            self._mask_buffer[0] = 1.0 if action_masks is None else np.asarray(action_masks, dtype=np.float32).reshape(-1)
        self._run_bound(self._io)
        out = self._out_buffer
        if self.space["type"] == "box":
            return out[0].reshape(self._box_shape).copy()
        if self.space["type"] == "multidiscrete":
            return out[0].copy()
        return np.array(out[0])

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, None]:
        """The deterministic action(s) for one observation or a batch, as ``model.predict`` returns them."""
        single = self._predict_single(observation, action_masks)
        if single is not None:
            return single, None
        parts, batched = self._parts(observation)
        if self.masked:
            if action_masks is None:
                m = np.ones((parts[0].shape[0], self._n_mask()), dtype=np.float32)
            else:
                m = np.asarray(action_masks, dtype=np.float32).reshape(parts[0].shape[0], -1)
            parts.append(m)
        action = self._run(self._out, dict(zip(self._names, parts, strict=True)))[0]
        return self._finish(action, batched), None

    def _n_mask(self) -> int:
        return int(self.space["n"]) if self._discrete else int(sum(self.space["nvec"]))

    def __call__(self, observation: Any) -> np.ndarray:
        return self.predict(observation)[0]


# --------------------------------------------------------------------------- numpy MLP


_NUMPY_ACTIVATIONS = {
    "ReLU": lambda x: np.maximum(x, 0.0, out=x),
    "Tanh": lambda x: np.tanh(x, out=x),
    "Identity": lambda x: x,
    "Flatten": lambda x: x,
    "ELU": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "LeakyReLU": lambda x: np.where(x > 0, x, 0.01 * x),
    "SiLU": lambda x: x / (1.0 + np.exp(-x)),
    "Sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def _numpy_layers(module: nn.Module) -> list[tuple[str, Any]]:
    """A module made of Linear layers and activations, in order, as ('linear', (W.T, b)) / ('act', fn) steps."""
    out: list[tuple[str, Any]] = []
    for m in module.modules():
        name = type(m).__name__
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().numpy().astype(np.float32).T.copy()
            b = m.bias.detach().cpu().numpy().astype(np.float32).copy() if m.bias is not None else np.zeros(w.shape[1], np.float32)
            out.append(("linear", (w, b)))
        elif list(m.children()):
            if not isinstance(m, nn.Sequential) and m is not module:
                raise UnsupportedPolicyError(f"NumpyPolicy handles Linear layers and activations only; found {name}")
        elif name == "LeakyReLU":
            out.append(("act", lambda x, s=float(m.negative_slope): np.where(x > 0, x, s * x)))
        elif name in _NUMPY_ACTIVATIONS:
            out.append(("act", _NUMPY_ACTIVATIONS[name]))
        else:
            raise UnsupportedPolicyError(f"NumpyPolicy handles Linear layers and activations only; found {name}")
    return out


class NumpyPolicy(_Predictor):
    """The deterministic action of an MLP-only actor-critic policy (PPO / A2C) as numpy products.

    Works when the feature extractor is the ``mlp`` extractor, SB3's ``FlattenExtractor`` or its
    ``CombinedExtractor`` over Box parts, and the policy head is SB3's MLP; raises
    :class:`UnsupportedPolicyError` otherwise (use :class:`OnnxPolicy`). VecNormalize statistics
    saved with the model are applied. Same ``predict`` signature as SB3 (no masks).
    """

    def __init__(self, model: Any) -> None:
        from stable_baselines3.common.torch_layers import (
            CombinedExtractor,
            FlattenExtractor,
        )

        from quant_arena.agents.extractors import MLPExtractor

        module = _PolicyAction(model)
        if module.kind != "actor_critic" or module.masked:
            raise UnsupportedPolicyError("NumpyPolicy supports PPO / A2C actor-critic policies (no masks); use OnnxPolicy")
        p = model.policy
        if p.squash_output:
            raise UnsupportedPolicyError("NumpyPolicy does not handle squashed (gSDE) outputs; use OnnxPolicy")
        ext = p.pi_features_extractor
        self._setup({"inputs": [[k, list(s)] for k, s in module.layout], "dict_obs": module.is_dict, "masked": False,
                     "action_space": module.info})
        if isinstance(ext, MLPExtractor):
            keys = getattr(ext, "_keys", None) or [k for k, _ in module.layout]
            net = ext.net if hasattr(ext, "net") else None
            if net is None:
                raise UnsupportedPolicyError("MLPExtractor layout not recognised")
            self._order = keys
            self._extractor = _numpy_layers(net)
        elif isinstance(ext, FlattenExtractor | CombinedExtractor):
            if isinstance(ext, CombinedExtractor) and any(type(e).__name__ != "Flatten" for e in ext.extractors.values()):
                raise UnsupportedPolicyError("CombinedExtractor with non-flatten parts (images) is not supported")
            self._order = list(ext.extractors.keys()) if isinstance(ext, CombinedExtractor) else ["obs"]
            self._extractor = []
        else:
            raise UnsupportedPolicyError(f"NumpyPolicy cannot run the {type(ext).__name__} extractor; use OnnxPolicy")
        self._head = _numpy_layers(p.mlp_extractor.policy_net) + _numpy_layers(p.action_net)
        self._steps = self._extractor + self._head
        idx = {k: i for i, (k, _) in enumerate(self.layout)}
        self._idx = [idx[k] for k in self._order]
        self._norm: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.layout)
        for i, (key, _) in enumerate(self.layout):
            if key in module.norm_keys:
                self._norm[i] = (getattr(module, f"mean_{key}").numpy(), getattr(module, f"std_{key}").numpy())
        self._clip = getattr(module, "clip_obs", None)
        if self.space["type"] == "box":
            self._low = np.asarray(self.space["low"], np.float32)
            self._high = np.asarray(self.space["high"], np.float32)

    def _logits(self, parts: list[np.ndarray]) -> np.ndarray:
        n = parts[0].shape[0]
        flat = []
        for i in self._idx:
            x = parts[i]
            if self._norm[i] is not None:
                mean, std = self._norm[i]
                x = np.clip((x - mean) / std, -self._clip, self._clip)
            flat.append(x.reshape(n, -1))
        x = np.concatenate(flat, axis=1) if len(flat) > 1 else flat[0]
        for kind, step in self._steps:
            if kind == "linear":
                w, b = step
                x = x @ w
                x += b
            else:
                x = step(x)
        return x

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple[np.ndarray, None]:
        """The deterministic action(s) for one observation or a batch, as ``model.predict`` returns them."""
        parts, batched = self._parts(observation)
        out = self._logits(parts)
        t = self.space["type"]
        if t == "discrete":
            action = out.argmax(axis=1) + self.space["start"]
        elif t == "multidiscrete":
            cuts = np.cumsum(self.space["nvec"])[:-1]
            action = np.stack([part.argmax(axis=1) for part in np.split(out, cuts, axis=1)], axis=1)
        else:
            action = np.clip(out, self._low, self._high)
        return self._finish(action, batched), None

    def __call__(self, observation: Any) -> np.ndarray:
        return self.predict(observation)[0]
