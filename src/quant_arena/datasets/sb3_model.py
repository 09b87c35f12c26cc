"""A versioned Kedro dataset for Stable-Baselines3 / sb3-contrib models.

The file is SB3's own ``.zip`` (what ``model.save`` writes), so ``PPO.load(path)`` works on it
outside Kedro too. The algorithm's name is stored in the zip archive's comment, so loading
needs no configuration: ``{"algo": "PPO"}`` is read back and the right class is used.

Catalog example::

    "{namespace}.model":
      type: quant_arena.datasets.SB3ModelDataset
      filepath: data/06_models/{namespace}/model.zip
      versioned: true
"""

from __future__ import annotations

import io
import json
import zipfile
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from .atomic import atomic_open, remove_stale_parts

_COMMENT_PREFIX = b"quant_arena:"


def algorithm_classes() -> dict[str, type]:
    """Name -> class for every SB3 and sb3-contrib algorithm this dataset can load."""
    import sb3_contrib
    import stable_baselines3

    names_sb3 = ["A2C", "DDPG", "DQN", "PPO", "SAC", "TD3"]
    names_contrib = ["ARS", "CrossQ", "MaskablePPO", "QRDQN", "RecurrentPPO", "TQC", "TRPO"]
    classes = {n: getattr(stable_baselines3, n) for n in names_sb3 if hasattr(stable_baselines3, n)}
    classes.update({n: getattr(sb3_contrib, n) for n in names_contrib if hasattr(sb3_contrib, n)})
    return classes


class SB3ModelDataset(AbstractVersionedDataset[Any, Any]):
    """Saves and loads an SB3 ``BaseAlgorithm`` as a (versioned) zip file."""

    def __init__(
        self,
        *,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: where the zip goes (any fsspec protocol).
            version: Kedro version (``versioned: true`` in the catalog).
            credentials: filesystem credentials.
            fs_args: extra filesystem arguments.
            load_args: passed to ``Algorithm.load`` (``device`` defaults to ``"cpu"``).
            metadata: free metadata, ignored by Kedro.
        """
        _fs_args = deepcopy(fs_args) or {}
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol == "file":
            _fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **_fs_args)
        self._load_args = {"device": "cpu", **(load_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "version": self._version}

    def save(self, data: Any) -> None:
        """Write ``data`` (an SB3 algorithm) with its algorithm name in the zip comment."""
        classes = algorithm_classes()
        algo = next((name for name, cls in classes.items() if type(data) is cls), None)
        if algo is None:
            raise DatasetError(
                f"SB3ModelDataset({self._filepath}) can only save SB3/sb3-contrib algorithms "
                f"({', '.join(sorted(classes))}); got {type(data).__name__}"
            )
        buffer = io.BytesIO()
        data.save(buffer)
        with zipfile.ZipFile(buffer, mode="a") as archive:
            archive.comment = _COMMENT_PREFIX + json.dumps({"algo": algo}).encode()
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":  # no torn zip if the process is killed mid-save
            opened = atomic_open(self._fs, save_path, mode="wb")
        else:
            opened = self._fs.open(save_path, mode="wb")
        with opened as handle:
            handle.write(buffer.getvalue())
        if self._protocol == "file":
            remove_stale_parts(self._filepath)
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def load(self) -> Any:
        """Read the zip and return the algorithm, loaded with the class that saved it."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with self._fs.open(load_path, mode="rb") as handle:
            payload = handle.read()
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            comment = archive.comment
        if not comment.startswith(_COMMENT_PREFIX):
            raise DatasetError(f"{load_path} was not written by SB3ModelDataset (no algorithm tag)")
        algo = json.loads(comment[len(_COMMENT_PREFIX) :])["algo"]
        cls = algorithm_classes().get(algo)
        if cls is None:
            raise DatasetError(f"{load_path}: unknown algorithm {algo!r}")
        return cls.load(io.BytesIO(payload), **self._load_args)

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)
