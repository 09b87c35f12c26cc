"""The model bundle: everything one trained agent needs to run alone, as one directory.

A :class:`ModelBundle` is what a registered model version holds (:mod:`quant_arena.ops.registry`):
the trained SB3 model, the scaler fitted on its training window, the feature columns it observes,
its env and execution config, the data span it was trained / validated / evaluated on, the code
version that trained it and its metrics. :func:`save_bundle` writes it as files any process can
read back with :func:`load_bundle`:

===============  ==========================================================================
``model.zip``    the SB3 model (``model.save``; its saved observation normalisation inside)
``policy.onnx``  its deterministic policy as ONNX (:func:`quant_arena.agents.export_onnx`),
                 for serving without torch; absent for policies that cannot be exported
                 statelessly (RecurrentPPO: ``meta.json`` says why)
``scaler.pkl``   the fitted :class:`~quant_arena.features.FeatureScaler` (pickle)
``features.json``  the feature columns, in observation order
``env.json``     ``TradingEnvConfig.model_dump(mode="json")`` (execution costs included)
``meta.json``    algo, agent, data span, metrics, code version, extra, and the SHA-256 of
                 every other file (checked on load)
===============  ==========================================================================

:func:`bundle_actions` runs the bundle's deterministic policy over rows ``[start, end)`` of an
UNSCALED feature table through the studies' own code: :func:`quant_arena.study.model_input`
scales the table with the bundle's scaler, then :meth:`quant_arena.study.FoldUnit.score` runs
:func:`~quant_arena.evaluation.backtest.run_policy` with the bundle's env and costs. Same input,
same bundle: the same actions, positions and returns, bit for bit, in any process.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import pickle
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant_arena import __version__
from quant_arena.agents import ALGORITHMS, UnsupportedPolicyError, export_onnx
from quant_arena.envs import TradingEnvConfig
from quant_arena.evaluation import BacktestResult
from quant_arena.market import DataError
from quant_arena.study import FoldUnit, model_input, series_periods_per_year

__all__ = [
    "BUNDLE_FILES",
    "BundleError",
    "ModelBundle",
    "bundle_actions",
    "code_version",
    "load_bundle",
    "save_bundle",
]

BUNDLE_FORMAT = 1
MODEL_FILE = "model.zip"
ONNX_FILE = "policy.onnx"
SCALER_FILE = "scaler.pkl"
FEATURES_FILE = "features.json"
ENV_FILE = "env.json"
META_FILE = "meta.json"
#: The files a bundle directory must hold (``policy.onnx`` too unless ``meta.json`` says it was not exportable).
BUNDLE_FILES: tuple[str, ...] = (
    MODEL_FILE,
    ONNX_FILE,
    SCALER_FILE,
    FEATURES_FILE,
    ENV_FILE,
    META_FILE,
)


class BundleError(ValueError):
    """A bundle directory cannot be read (a file missing, altered or unreadable); the message names the file."""


@dataclass
class ModelBundle:
    """One trained agent and everything it needs to run alone (see the module docstring).

    Attributes:
        model: the trained SB3 model (the best validation weights).
        algo: its algorithm (a key of :data:`quant_arena.agents.ALGORITHMS`, e.g. ``"ppo"``), to reload the zip.
        agent: the agent's name (e.g. ``"ppo_mlp"``).
        scaler: the feature scaler fitted on the training rows only.
        feature_columns: the columns the agent observes, in order.
        env_config: ``TradingEnvConfig.model_dump(mode="json")``, execution costs included.
        data_span: first/last timestamps of the train / validation / evaluation windows (ISO
            strings), symbol, timeframe.
        metrics: the model's metrics (e.g. validation and evaluation Sharpe).
        code_version: the code that trained it (:func:`code_version`).
        extra: anything else; ``periods_per_year`` here is used by :func:`bundle_actions`
            (else it is inferred from the table, ``extra["calendar"]`` and the span's timeframe).
        directory: where :func:`load_bundle` read it from (None for a bundle built in memory).
    """

    model: Any
    algo: str
    agent: str
    scaler: Any
    feature_columns: list[str]
    env_config: dict[str, Any]
    data_span: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    code_version: str = field(default_factory=lambda: code_version())
    extra: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None

    @property
    def onnx_path(self) -> Path | None:
        """The exported ONNX policy of a loaded bundle (None in memory or when not exportable)."""
        if self.directory is None:
            return None
        path = self.directory / ONNX_FILE
        return path if path.is_file() else None


def code_version() -> str:
    """``<quant_arena.__version__>+<git commit>`` of the running code, ``+unknown`` outside a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha or 'unknown'}"


# --------------------------------------------------------------------------- save / load


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.Timestamp | _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dump(path: Path, obj: Any) -> None:
    path.write_text(
        json.dumps(obj, indent=2, sort_keys=False, default=_jsonable) + "\n"
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _algo_class(algo: str, where: str) -> type:
    key = str(algo).lower().replace("-", "").replace("_", "")
    for name, spec in ALGORITHMS.items():
        if name.replace("_", "") == key or spec.cls.__name__.lower() == key:
            return spec.cls
    raise BundleError(f"{where}: unknown algo {algo!r} (one of {sorted(ALGORITHMS)})")


def _env_dict(env_config: Any) -> dict[str, Any]:
    if hasattr(env_config, "model_dump"):
        return env_config.model_dump(mode="json")
    return TradingEnvConfig.model_validate(dict(env_config)).model_dump(mode="json")


def save_bundle(bundle: ModelBundle, directory: str | Path) -> Path:
    """Write ``bundle`` into ``directory`` (created; its bundle files are overwritten); returns the directory.

    The env config is validated (a bad one fails here, not in the process that loads it) and
    stored as its full JSON dump, so later changes of the config's defaults do not change the
    model's env.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    algo_cls = _algo_class(bundle.algo, "ModelBundle.algo")
    if not isinstance(bundle.model, algo_cls):
        raise BundleError(
            f"ModelBundle.model is a {type(bundle.model).__name__}, not the {algo_cls.__name__} its algo {bundle.algo!r} names"
        )
    columns = [str(c) for c in bundle.feature_columns]
    fitted = list(getattr(bundle.scaler, "columns", []))
    unscaled = [c for c in columns if c not in fitted]
    if unscaled:
        raise BundleError(
            f"ModelBundle.scaler was not fitted on the feature columns {unscaled} (it holds {fitted})"
        )
    for stale in BUNDLE_FILES:
        (out / stale).unlink(missing_ok=True)
    bundle.model.save(out / MODEL_FILE)
    try:
        export_onnx(bundle.model, out / ONNX_FILE)
        onnx_note = None
    except UnsupportedPolicyError as exc:
        onnx_note = str(exc)
    with (out / SCALER_FILE).open("wb") as handle:
        pickle.dump(bundle.scaler, handle, protocol=pickle.HIGHEST_PROTOCOL)
    _dump(out / FEATURES_FILE, columns)
    _dump(out / ENV_FILE, _env_dict(bundle.env_config))
    files = {
        name: file_sha256(out / name)
        for name in BUNDLE_FILES
        if name != META_FILE and (out / name).is_file()
    }
    meta = {
        "format": BUNDLE_FORMAT,
        "algo": bundle.algo,
        "agent": bundle.agent,
        "data_span": dict(bundle.data_span),
        "metrics": {str(k): float(v) for k, v in dict(bundle.metrics).items()},
        "code_version": bundle.code_version,
        "extra": dict(bundle.extra),
        "onnx": {"file": ONNX_FILE}
        if onnx_note is None
        else {"file": None, "why_not": onnx_note},
        "files": files,
    }
    _dump(out / META_FILE, meta)
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not readable as JSON ({exc})") from exc


def load_bundle(directory: str | Path) -> ModelBundle:
    """Read a bundle written by :func:`save_bundle`.

    Raises :class:`BundleError` naming the file when one is missing, altered since it was saved
    (SHA-256 in ``meta.json``) or unreadable.
    """
    root = Path(directory)
    if not root.is_dir():
        raise BundleError(f"{root}: no such bundle directory")
    meta_path = root / META_FILE
    if not meta_path.is_file():
        raise BundleError(
            f"{meta_path}: missing (a model bundle holds {', '.join(BUNDLE_FILES)})"
        )
    meta = _read_json(meta_path)
    if not isinstance(meta, dict) or meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{meta_path}: not a bundle of format {BUNDLE_FORMAT} (format {meta.get('format') if isinstance(meta, dict) else None!r})"
        )
    required = [
        n
        for n in BUNDLE_FILES
        if n != META_FILE and (n != ONNX_FILE or meta.get("onnx", {}).get("file"))
    ]
    for name in required:
        path = root / name
        if not path.is_file():
            raise BundleError(
                f"{path}: missing (a model bundle holds {', '.join(BUNDLE_FILES)})"
            )
        expected = meta.get("files", {}).get(name)
        if expected is None:
            raise BundleError(f"{meta_path}: no checksum for {name}")
        if file_sha256(path) != expected:
            raise BundleError(
                f"{path}: altered since the bundle was saved (SHA-256 differs from {META_FILE})"
            )
    algo_cls = _algo_class(meta.get("algo", ""), str(meta_path))
    try:
        model = algo_cls.load(root / MODEL_FILE, device="cpu")
    except Exception as exc:  # SB3 raises many kinds on a bad zip
        raise BundleError(
            f"{root / MODEL_FILE}: cannot be loaded as {algo_cls.__name__} ({exc})"
        ) from exc
    try:
        with (root / SCALER_FILE).open("rb") as handle:
            scaler = pickle.load(handle)  # noqa: S301 - our own file, checksum verified above
    except Exception as exc:
        raise BundleError(f"{root / SCALER_FILE}: cannot be unpickled ({exc})") from exc
    columns = _read_json(root / FEATURES_FILE)
    env = _read_json(root / ENV_FILE)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise BundleError(f"{root / FEATURES_FILE}: expected a list of column names")
    if not isinstance(env, dict):
        raise BundleError(
            f"{root / ENV_FILE}: expected an object (a TradingEnvConfig dump)"
        )
    return ModelBundle(
        model=model,
        algo=str(meta["algo"]),
        agent=str(meta.get("agent", "")),
        scaler=scaler,
        feature_columns=columns,
        env_config=env,
        data_span=dict(meta.get("data_span") or {}),
        metrics={str(k): float(v) for k, v in (meta.get("metrics") or {}).items()},
        code_version=str(meta.get("code_version", "unknown")),
        extra=dict(meta.get("extra") or {}),
        directory=root,
    )


# --------------------------------------------------------------------------- running it


def _scaler_for(scaler: Any, columns: list[str]) -> Any:
    """``scaler`` restricted to ``columns`` (a scaler fitted on more columns than the agent sees:
    walk_forward's all_columns); per-column statistics, so the scaled values are the same."""
    fitted = list(scaler.columns)
    if fitted == [c for c in fitted if c in columns]:
        return scaler
    view = pickle.loads(pickle.dumps(scaler))  # noqa: S301 - a copy of an object we hold
    view.columns = [c for c in fitted if c in set(columns)]
    return view


def _periods_per_year(bundle: ModelBundle, frame: pd.DataFrame) -> float:
    ppy = bundle.extra.get("periods_per_year", bundle.data_span.get("periods_per_year"))
    if ppy is not None:
        value = float(ppy)
        if not math.isfinite(value) or value <= 0:
            raise BundleError(
                f"bundle periods_per_year={ppy!r}: must be a positive number"
            )
        return value
    return series_periods_per_year(
        frame, bundle.data_span.get("timeframe"), bundle.extra.get("calendar")
    )


def bundle_actions(
    bundle: ModelBundle, features: pd.DataFrame, start: int, end: int, *, name: str = ""
) -> BacktestResult:
    """The bundle's deterministic policy over rows ``[start, end)`` of ``features``.

    ``features`` is ONE series (oldest first, as the studies' series frame) with UNSCALED
    feature columns: it is scaled with the bundle's scaler (:func:`quant_arena.study.model_input`)
    and run by :meth:`quant_arena.study.FoldUnit.score` (``run_policy``, the simulator and costs of
    the bundle's env). As in :mod:`quant_arena.evaluation.backtest`, bars ``start + 1 .. end - 1``
    are traded; ``positions``, ``returns`` and the per-bar ledger (``columns``) are the result.

    Raises :class:`~quant_arena.market.DataError` when the table lacks a feature column or the
    window is outside it.
    """
    columns = list(bundle.feature_columns)
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise DataError(
            f"bundle_actions: the feature table lacks the bundle's feature columns {missing}",
            rule="missing_columns",
        )
    n = len(features)
    start, end = int(start), int(end)
    if not 0 <= start < end <= n:
        raise DataError(
            f"bundle_actions: rows [{start}, {end}) are not inside the table's {n} rows",
            rule="window",
        )
    frame = model_input(features, columns, _scaler_for(bundle.scaler, columns))
    env = TradingEnvConfig.model_validate(bundle.env_config)
    unit = FoldUnit(
        frame,
        columns,
        env,
        train_stop=start,
        validation=(start, start),
        periods_per_year=_periods_per_year(bundle, features),
    )
    return unit.score(bundle.model, start, end, name=name or bundle.agent)
