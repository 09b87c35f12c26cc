"""The model registry: model bundles as MLflow registered-model versions, ``champion`` /
``challenger`` aliases, promotion under a lock with compare-and-set, and rollback.

The registry is MLflow's Model Registry on the tracking store (``MLFLOW_TRACKING_URI``; the
project's default is the SQLite file ``sqlite:///mlflow.db``; any MLflow server works).

* :meth:`ModelRegistry.register` writes the :class:`~quant_arena.ops.bundle.ModelBundle` with
  :func:`~quant_arena.ops.bundle.save_bundle`, logs the directory as the artifacts
  ``model_bundle/`` of an MLflow run (a new run of the experiment ``quant_arena_registry``), or
  ``model_bundle/<model name>/`` of the caller's ``run_id`` (one run may register several
  models: a retrain's agents; a second version of one model in it gets ``<model name>.2``, ...),
  and creates a model version whose source is that artifact directory
  (``MlflowClient.create_model_version``). The bundle is registered as plain artifacts, not as
  a pyfunc model: MLflow 3's ``mlflow.register_model("runs:/<run>/<path>")`` only accepts a
  *logged model* (``Unable to find a logged_model with artifact_path ...`` otherwise), and a
  pyfunc flavour would add a serving wrapper, an environment capture and dependency inference
  that nothing here uses; the bundle's own loader (:func:`~quant_arena.ops.bundle.load_bundle`)
  is the one way to run it. The version's tags carry the algo, agent, code version, data span,
  feature columns and every metric (``metric.<name>``), so the MLflow UI shows them.
* :meth:`ModelRegistry.promote` moves ``champion`` under the promotion lock
  (:mod:`quant_arena.ops.lock`) only if the champion is still the one the caller evaluated
  against (compare-and-set): two retrains finishing at once cannot both promote.
* Every champion change (promotion or rollback) is an event, one registered-model tag
  ``quant_arena.champion_history.<seq>`` each (JSON: event, version, previous champion, reason,
  UTC time, host, pid), written under the lock BEFORE the alias moves. An event whose alias move
  never happened (the process was killed in between) is recognised on reading: the next event's
  ``previous`` (or, for the last one, the live alias) is not its version; :meth:`history`
  marks it ``applied=False`` and rollback ignores it.
* :meth:`ModelRegistry.rollback` moves ``champion`` back to the champion before it (replaying
  the applied events as a stack: a promotion pushes, a rollback to ``v`` cuts back to ``v``, so
  two rollbacks in a row go two champions back), or to an explicit version.

Rollback is one command (``MLFLOW_TRACKING_URI`` or ``--tracking-uri``; default ``sqlite:///mlflow.db``)::

    python -m quant_arena.ops.registry rollback --model quant_arena_ppo_mlp            # previous champion
    python -m quant_arena.ops.registry rollback --model quant_arena_ppo_mlp --to 3     # version 3
    python -m quant_arena.ops.registry show --model quant_arena_ppo_mlp                # champion, challenger, history
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from quant_arena.ops.lock import FileLock, SqlLock, promotion_lock

if (
    TYPE_CHECKING
):  # the bundle module imports torch and the studies: only register/load need it
    from quant_arena.ops.bundle import ModelBundle

__all__ = [
    "ARTIFACT_PATH",
    "CHALLENGER",
    "CHAMPION",
    "HISTORY_COLUMNS",
    "HISTORY_TAG",
    "ModelRegistry",
    "RegistryError",
    "main",
]

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Where a version's bundle lives inside its MLflow run's artifacts.
ARTIFACT_PATH = "model_bundle"
#: Prefix of the registered-model tags holding the champion history (``<prefix>000001``, ...).
HISTORY_TAG = "quant_arena.champion_history."
HISTORY_COLUMNS: tuple[str, ...] = (
    "seq",
    "event",
    "version",
    "previous",
    "applied",
    "reason",
    "at",
    "host",
    "pid",
    "user",
)
DEFAULT_EXPERIMENT = "quant_arena_registry"
_MAX_REASON = 2000


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, ...)."""


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _text(value: Any) -> str:
    return (
        value
        if isinstance(value, str)
        else json.dumps(value, default=str, sort_keys=True)
    )


class ModelRegistry:
    """The registered model ``name`` in MLflow's Model Registry (see the module docstring).

    Args:
        name: the registered model's name (e.g. ``quant_arena_ppo_mlp``).
        tracking_uri: the tracking store; None = ``mlflow.get_tracking_uri()``
            (``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
        experiment: the experiment of the runs :meth:`register` creates.
        artifact_location: where that experiment stores artifacts when this call creates it
            (None: the tracking store's default).
        lock_timeout, lock_lease: the promotion lock's wait and lease, seconds.
        lock_url: where the lock lives when not in the tracking store's database
            (:func:`quant_arena.ops.lock.lock_location`).
    """

    def __init__(
        self,
        name: str,
        tracking_uri: str | None = None,
        *,
        experiment: str = DEFAULT_EXPERIMENT,
        artifact_location: str | None = None,
        lock_timeout: float = 60.0,
        lock_lease: float = 300.0,
        lock_url: str | None = None,
    ) -> None:
        import mlflow
        from mlflow import MlflowClient

        if not name:
            raise RegistryError("ModelRegistry: the registered model needs a name")
        self.name = str(name)
        self.tracking_uri = str(tracking_uri or mlflow.get_tracking_uri())
        self.client = MlflowClient(
            tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
        )
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.lock_timeout = float(lock_timeout)
        self.lock_lease = float(lock_lease)
        self.lock_url = lock_url

    def __repr__(self) -> str:
        return f"ModelRegistry({self.name!r}, {self.tracking_uri!r})"

    # ----------------------------------------------------------------------- plumbing

    def lock(self) -> SqlLock | FileLock:
        """A new (not yet acquired) promotion lock for this model."""
        return promotion_lock(
            self.tracking_uri,
            self.name,
            timeout=self.lock_timeout,
            lease=self.lock_lease,
            lock_url=self.lock_url,
        )

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        try:
            return str(
                self.client.create_experiment(
                    self.experiment, artifact_location=self.artifact_location
                )
            )
        except MlflowException as exc:  # created meanwhile by another process
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return str(
                self.client.get_experiment_by_name(self.experiment).experiment_id
            )

    def _ensure_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(
                self.name,
                description="quant_arena model bundles (quant_arena.ops.registry)",
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise
        return {str(k): str(v) for k, v in (model.aliases or {}).items()}

    def _check_version(self, version: str) -> str:
        from mlflow.exceptions import MlflowException

        version = str(version).strip()
        try:
            self.client.get_model_version(self.name, version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise RegistryError(
                    f"registered model {self.name!r} has no version {version!r} (in {self.tracking_uri})"
                ) from exc
            raise
        return version

    # ----------------------------------------------------------------------- versions

    def register(
        self,
        bundle: ModelBundle,
        *,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Log ``bundle`` as the artifacts ``model_bundle/`` of a new MLflow run (or
        ``model_bundle/<name>/`` of the run ``run_id``, which other models' versions may share) and
        register it as a new version of the model; returns the version.

        Aliases are not touched: the new version is neither champion nor challenger until
        :meth:`set_challenger` / :meth:`promote` say so.
        """
        from mlflow.entities import Metric, Param, RunTag

        from quant_arena.ops.bundle import save_bundle

        own_run = run_id is None
        if own_run:
            run = self.client.create_run(
                self._experiment_id(),
                run_name=f"{self.name}.register",
                tags={"quant_arena.registered_model": self.name},
            )
            run_id = run.info.run_id
        else:
            run = self.client.get_run(str(run_id))
        path = ARTIFACT_PATH if own_run else self._shared_run_path(str(run_id))
        try:
            with tempfile.TemporaryDirectory(prefix="quant_arena_bundle_") as tmp:
                folder = save_bundle(bundle, Path(tmp) / ARTIFACT_PATH)
                self.client.log_artifacts(run_id, str(folder), artifact_path=path)
            if own_run:
                now = int(time.time() * 1000)
                metrics = [
                    Metric(str(k), float(v), now, 0) for k, v in bundle.metrics.items()
                ]
                params = [
                    Param("algo", bundle.algo),
                    Param("agent", bundle.agent),
                    Param("code_version", bundle.code_version),
                ]
                self.client.log_batch(
                    run_id,
                    metrics=metrics,
                    params=params,
                    tags=[RunTag("quant_arena.data_span", _text(bundle.data_span))],
                )
        except BaseException:
            if own_run:
                self.client.set_terminated(run_id, "FAILED")
            raise
        if own_run:
            self.client.set_terminated(run_id, "FINISHED")
        self._ensure_model()
        version_tags = {
            "quant_arena.algo": bundle.algo,
            "quant_arena.agent": bundle.agent,
            "quant_arena.code_version": bundle.code_version,
            "quant_arena.data_span": _text(bundle.data_span),
            "quant_arena.feature_columns": _text(list(bundle.feature_columns)),
            **{f"metric.{k}": repr(float(v)) for k, v in bundle.metrics.items()},
            **{str(k): _text(v) for k, v in dict(tags or {}).items()},
        }
        mv = self.client.create_model_version(
            self.name,
            source=f"{run.info.artifact_uri.rstrip('/')}/{path}",
            run_id=run_id,
            tags=version_tags,
            description=f"{bundle.agent} ({bundle.algo}), code {bundle.code_version}",
        )
        logger.info("registered %s version %s (run %s)", self.name, mv.version, run_id)
        return str(mv.version)

    def _shared_run_path(self, run_id: str) -> str:
        """This model's artifact folder in a run that other registrations may share: never one a
        version already points at (two agents of one retrain run used to share ``model_bundle/``,
        the second overwriting the first's bundle under both versions)."""
        taken = {
            f.path for f in self.client.list_artifacts(run_id, ARTIFACT_PATH) if f.is_dir
        }
        path, k = f"{ARTIFACT_PATH}/{self.name}", 1
        while path in taken:
            k += 1
            path = f"{ARTIFACT_PATH}/{self.name}.{k}"
        return path

    def exists(self) -> bool:
        """Whether the registered model exists in the registry."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True

    def version_of(self, alias: str) -> str | None:
        """The version the alias (``champion``, ``challenger``) points at, None when unset."""
        return self._aliases().get(alias)

    def set_challenger(self, version: str) -> None:
        """Point ``challenger`` at ``version``."""
        version = self._check_version(version)
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)

    def resolve(self, alias_or_version: str) -> str:
        """The version number of an alias or of a version (checked to exist)."""
        ref = str(alias_or_version).strip()
        if ref.isdigit():
            return self._check_version(ref)
        version = self.version_of(ref)
        if version is None:
            raise RegistryError(
                f"registered model {self.name!r} has no alias {ref!r} (in {self.tracking_uri})"
            )
        return version

    def load(self, alias_or_version: str, dst: str | Path | None = None) -> ModelBundle:
        """Download a version's bundle (by alias, e.g. ``champion``, or number) and load it.

        ``dst``: the directory to download into (default: a new temporary directory, left for
        the caller: the loaded bundle's ``directory`` points there, e.g. for its ONNX policy).
        """
        import mlflow

        from quant_arena.ops.bundle import load_bundle

        version = self.resolve(alias_or_version)
        source = self.client.get_model_version(self.name, version).source
        target = (
            Path(dst)
            if dst is not None
            else Path(tempfile.mkdtemp(prefix=f"quant_arena_{self.name}_v{version}_"))
        )
        target.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(target), tracking_uri=self.tracking_uri
        )
        return load_bundle(local)

    # ----------------------------------------------------------------------- champion

    def promote(
        self, version: str, *, expected_champion: str | None, reason: str
    ) -> bool:
        """Make ``version`` the champion if the champion is still ``expected_champion`` (None:
        there is none); under the promotion lock, so the check and the move are one step.

        Returns False, changing nothing, when the champion moved since the caller read it
        (another retrain promoted meanwhile). The change is recorded in :meth:`history`.
        Raises :class:`RegistryError` for an unknown version and
        :class:`~quant_arena.ops.lock.LockTimeout` when the lock stays held by a live holder
        for ``lock_timeout`` seconds (nothing changed then either).
        """
        version = self._check_version(version)
        expected = None if expected_champion is None else str(expected_champion).strip()
        with self.lock():
            current = self.version_of(CHAMPION)
            if current != expected:
                logger.warning(
                    "%s: not promoting version %s: the champion is %s, not the expected %s (another promotion happened meanwhile)",
                    self.name,
                    version,
                    current,
                    expected,
                )
                return False
            if current == version:
                logger.info(
                    "%s: version %s is already the champion", self.name, version
                )
                return True
            self._record("promote", version, current, reason)
            self.client.set_registered_model_alias(self.name, CHAMPION, version)
        logger.info("%s: champion %s -> %s (%s)", self.name, current, version, reason)
        return True

    def rollback(
        self, to_version: str | None = None, *, reason: str = "rollback"
    ) -> str:
        """Move ``champion`` back to the previous champion (or to ``to_version``); returns the new champion.

        Raises :class:`RegistryError` when there is no champion, no previous champion in the
        history, or ``to_version`` does not exist.
        """
        target_given = None if to_version is None else self._check_version(to_version)
        with self.lock():
            current = self.version_of(CHAMPION)
            if target_given is None:
                if current is None:
                    raise RegistryError(
                        f"registered model {self.name!r} has no champion to roll back"
                    )
                stack = _champion_stack(self._events(current))
                if not stack or stack[-1] != current:
                    logger.warning(
                        "%s: the champion %s was not set through this registry's history; rolling back to the last recorded champion",
                        self.name,
                        current,
                    )
                    stack.append(current)
                if len(stack) < 2:
                    raise RegistryError(
                        f"registered model {self.name!r}: champion version {current} has no previous champion in the history; give the version (--to N)"
                    )
                target = stack[-2]
            else:
                target = target_given
            if target == current:
                logger.info("%s: version %s is already the champion", self.name, target)
                return target
            self._record("rollback", target, current, reason)
            self.client.set_registered_model_alias(self.name, CHAMPION, target)
        logger.warning(
            "%s: champion rolled back %s -> %s (%s)", self.name, current, target, reason
        )
        return target

    # ----------------------------------------------------------------------- history

    def _raw_events(self) -> list[dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.name).tags or {}
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return []
            raise
        events = []
        for key, value in tags.items():
            if key.startswith(HISTORY_TAG):
                event = json.loads(value)
                event["seq"] = int(key[len(HISTORY_TAG) :])
                events.append(event)
        return sorted(events, key=lambda e: e["seq"])

    def _events(self, champion: str | None) -> list[dict[str, Any]]:
        """The events in order, each marked ``applied`` (its alias move happened): the next
        event's ``previous``, or for the last one the live ``champion``, is its version."""
        events = self._raw_events()
        for i, event in enumerate(events):
            after = events[i + 1]["previous"] if i + 1 < len(events) else champion
            event["applied"] = after == event["version"]
        return events

    def _record(
        self, event: str, version: str, previous: str | None, reason: str
    ) -> None:
        """Write one history event (called under the lock, before the alias moves)."""
        seq = max((e["seq"] for e in self._raw_events()), default=0) + 1
        record = {
            "event": event,
            "version": version,
            "previous": previous,
            "reason": str(reason)[:_MAX_REASON],
            "at": pd.Timestamp.now(tz="UTC").isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "user": _user(),
        }
        self.client.set_registered_model_tag(
            self.name, f"{HISTORY_TAG}{seq:06d}", json.dumps(record)
        )

    def history(self) -> pd.DataFrame:
        """Every champion change in order (:data:`HISTORY_COLUMNS`); ``applied`` is False for a
        change recorded by a process killed before it moved the alias."""
        events = self._events(self.version_of(CHAMPION))
        table = pd.DataFrame(
            [{c: e.get(c) for c in HISTORY_COLUMNS} for e in events],
            columns=list(HISTORY_COLUMNS),
        )
        table["previous"] = pd.Series(
            [e.get("previous") for e in events], dtype=object
        )  # None stays None (no champion before)
        return table

    def describe(self) -> dict[str, Any]:
        """Champion, challenger and the history, for people (the ``show`` command)."""
        aliases = self._aliases()
        return {
            "model": self.name,
            "tracking_uri": self.tracking_uri,
            CHAMPION: aliases.get(CHAMPION),
            CHALLENGER: aliases.get(CHALLENGER),
            "history": self.history(),
        }


def _champion_stack(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The champions in order, replaying the applied events: a promotion pushes its version; a
    rollback to ``v`` cuts back to the last ``v`` (or pushes ``v`` when it was never champion)."""
    stack: list[str] = []
    for event in events:
        if not event.get("applied", True):
            continue
        version = str(event["version"])
        if event["event"] == "rollback" and version in stack:
            del stack[len(stack) - stack[::-1].index(version) :]
        else:
            stack.append(version)
    return stack


# --------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m quant_arena.ops.registry",
        description="The model registry's champion: show it, or roll it back (MLFLOW_TRACKING_URI, default sqlite:///mlflow.db).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command, text in (
        ("show", "champion, challenger and the champion history"),
        ("rollback", "move champion back to the previous champion, or to --to VERSION"),
    ):
        p = sub.add_parser(command, help=text, description=text)
        p.add_argument("--model", required=True, help="the registered model's name")
        p.add_argument(
            "--tracking-uri",
            default=None,
            help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
        )
        if command == "rollback":
            p.add_argument(
                "--to",
                default=None,
                help="the version to make champion (default: the previous champion)",
            )
            p.add_argument(
                "--reason",
                default=None,
                help="recorded in the history (default: who ran the command)",
            )
            p.add_argument(
                "--lock-timeout",
                type=float,
                default=60.0,
                help="seconds to wait for the promotion lock",
            )
    return parser


def _say(line: str) -> None:
    sys.stdout.write(f"{line}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``show`` / ``rollback`` (see the module docstring); returns the exit status."""
    args = _parser().parse_args(argv)
    uri = (
        args.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or "sqlite:///mlflow.db"
    )
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        registry = ModelRegistry(
            args.model, uri, lock_timeout=getattr(args, "lock_timeout", 60.0)
        )
        if not registry.exists():
            raise RegistryError(f"no registered model {args.model!r} in {uri}")
        if args.command == "show":
            info = registry.describe()
            _say(f"model:      {info['model']}  ({uri})")
            _say(f"champion:   {info[CHAMPION] or '-'}")
            _say(f"challenger: {info[CHALLENGER] or '-'}")
            history = info["history"]
            _say("history:" + ("" if len(history) else " (none)"))
            if len(history):
                _say(
                    history[
                        [
                            "seq",
                            "event",
                            "version",
                            "previous",
                            "applied",
                            "at",
                            "reason",
                        ]
                    ].to_string(index=False)
                )
            return 0
        before = registry.version_of(CHAMPION)
        reason = args.reason or f"rollback command by {_user()}@{socket.gethostname()}"
        after = registry.rollback(args.to, reason=reason)
        _say(f"{args.model}: champion {before} -> {after}")
        return 0
    except Exception as exc:  # the command's user gets one line, not a traceback
        sys.stderr.write(f"error: {type(exc).__name__}: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover - exercised as a subprocess by tests/ops
    raise SystemExit(main())
