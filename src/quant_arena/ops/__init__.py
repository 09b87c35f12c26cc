"""Operations: what runs a model in production between retrains (no Kedro here).

- :mod:`~quant_arena.ops.bundle`: :class:`ModelBundle`, everything one trained agent needs to run
  alone (SB3 zip, ONNX policy, scaler, feature columns, env config, data span, code version,
  metrics), :func:`save_bundle` / :func:`load_bundle`, and :func:`bundle_actions` (its
  deterministic policy through the studies' own fold unit);
- :mod:`~quant_arena.ops.registry`: :class:`ModelRegistry`, MLflow's Model Registry with the
  ``champion`` / ``challenger`` aliases, promotion by compare-and-set under the lock, history and
  rollback (``python -m quant_arena.ops.registry rollback --model NAME [--to N]``);
- :mod:`~quant_arena.ops.lock`: the promotion lock in the registry's database (stale holders
  taken over).

Names are imported lazily (:func:`quant_arena.lazy.lazy_face`): ``python -m
quant_arena.ops.registry`` does not import the registry module twice, and reading a name of one
module does not import MLflow or torch through the others.
"""

from __future__ import annotations

from quant_arena.lazy import lazy_face

_EXPORTS: dict[str, str] = {
    # bundle
    "BUNDLE_FILES": "bundle",
    "BundleError": "bundle",
    "ModelBundle": "bundle",
    "bundle_actions": "bundle",
    "code_version": "bundle",
    "load_bundle": "bundle",
    "save_bundle": "bundle",
    # lock
    "LOCK_TABLE": "lock",
    "FileLock": "lock",
    "LockError": "lock",
    "LockTimeout": "lock",
    "SqlLock": "lock",
    "lock_location": "lock",
    "pid_alive": "lock",
    "promotion_lock": "lock",
    # registry
    "ARTIFACT_PATH": "registry",
    "CHALLENGER": "registry",
    "CHAMPION": "registry",
    "HISTORY_COLUMNS": "registry",
    "HISTORY_TAG": "registry",
    "ModelRegistry": "registry",
    "RegistryError": "registry",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the face is the keys of _EXPORTS
__getattr__, __dir__ = lazy_face(__name__, _EXPORTS, globals())
