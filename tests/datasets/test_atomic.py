"""Every file dataset of the catalog saves atomically on local disk: a save that dies mid-write
(disk full, ``kill -9``) leaves no file at its target and the earlier versions as they were, so
``kedro run --only-missing-outputs`` never takes a torn output for a finished one.

(CI found the bug this guards: a walk_forward run killed mid-save left a torn training record
pickle; the resumed run skipped its training node and failed loading it: "Ran out of input".)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fsspec.implementations.local as fs_local
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version
from matplotlib.figure import Figure

from quant_arena.datasets import (
    JSONDataset,
    MatplotlibDataset,
    ParquetDataset,
    PickleDataset,
    TextDataset,
)
from quant_arena.datasets.atomic import PART_SUFFIX


def _figure(title: str) -> Figure:
    fig = Figure()
    fig.add_subplot().set_title(title)
    return fig


#: dataset class, file name, (first payload, second payload), how to compare a loaded payload
CASES: list[tuple[type, str, tuple[Any, Any]]] = [
    (PickleDataset, "a.pkl", ({"x": list(range(5000))}, {"x": list(range(6000))})),
    (JSONDataset, "a.json", ({"x": list(range(5000))}, {"x": list(range(6000))})),
    (TextDataset, "a.md", ("first " * 5000, "second " * 5000)),
    (
        ParquetDataset,
        "a.parquet",
        (pd.DataFrame({"x": range(5000)}), pd.DataFrame({"x": range(6000)})),
    ),
]


class _TornFile:
    """A file handle that writes half of what it is given, then fails like a full disk."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def __enter__(self) -> _TornFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def write(self, data: Any) -> int:
        self._real.write(data[: max(1, len(data) // 2)])
        self._real.flush()
        raise OSError(28, "No space left on device")


def _tear_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = fs_local.LocalFileSystem.open

    def open_(self, path, mode="rb", *args, **kwargs):
        handle = real_open(self, path, mode, *args, **kwargs)
        return _TornFile(handle) if "w" in mode else handle

    monkeypatch.setattr(fs_local.LocalFileSystem, "open", open_)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _equal(a: Any, b: Any) -> bool:
    return a.equals(b) if isinstance(a, pd.DataFrame) else a == b


@pytest.mark.parametrize("cls,name,payloads", CASES, ids=[c[0].__name__ for c in CASES])
def test_a_save_that_fails_mid_write_leaves_no_file_and_the_last_version_loads(
    tmp_path, monkeypatch, cls, name, payloads
):
    first, second = payloads
    cls(
        filepath=str(tmp_path / name), version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(first)
    before = _files(tmp_path)

    _tear_writes(monkeypatch)
    torn = cls(
        filepath=str(tmp_path / name), version=Version(None, "2026-01-02T00.00.00.000Z")
    )
    with pytest.raises((DatasetError, OSError), match="No space left"):
        torn.save(second)
    monkeypatch.undo()

    assert (
        _files(tmp_path) == before
    )  # no torn file at the new version, no temporary file
    latest = cls(filepath=str(tmp_path / name), version=Version(None, None))
    assert latest.exists() and _equal(latest.load(), first)  # the last whole version

    again = cls(
        filepath=str(tmp_path / name), version=Version(None, "2026-01-03T00.00.00.000Z")
    )
    again.save(second)
    assert _equal(
        cls(filepath=str(tmp_path / name), version=Version(None, None)).load(), second
    )


def test_a_figure_save_that_fails_mid_write_leaves_no_png(tmp_path, monkeypatch):
    path = tmp_path / "p.png"
    _tear_writes(monkeypatch)
    with pytest.raises((DatasetError, OSError), match="No space left"):
        MatplotlibDataset(filepath=str(path), version=Version(None, "v1")).save(
            _figure("a")
        )
    monkeypatch.undo()
    assert _files(tmp_path) == []
    MatplotlibDataset(filepath=str(path), version=Version(None, "v2")).save(
        _figure("b")
    )
    png = path / "v2" / "p.png"
    assert png.read_bytes().startswith(b"\x89PNG") and _files(tmp_path) == [
        "p.png/v2/p.png"
    ]


def test_a_figure_dict_is_saved_file_by_file(tmp_path):
    MatplotlibDataset(filepath=str(tmp_path / "figs")).save(
        {"a.png": _figure("a"), "b.png": _figure("b")}
    )
    assert _files(tmp_path) == ["figs/a.png", "figs/b.png"]


_KILLED_MID_SAVE = """
import pathlib, sys, time
from kedro.io.core import Version
from quant_arena.datasets import PickleDataset

class Slow:  # pickled after a large payload has been written: the save is stuck mid-file
    def __reduce__(self):
        pathlib.Path(sys.argv[2]).write_text("writing")
        time.sleep(60)
        return (int, (0,))

PickleDataset(filepath=sys.argv[1], version=Version(None, "v2")).save([b"x" * 4_000_000, Slow()])
"""


def test_a_process_killed_mid_save_leaves_no_output_a_resumed_run_would_skip(tmp_path):
    target = tmp_path / "06_models" / "fold_0.agent_training.pkl"
    PickleDataset(filepath=str(target), version=Version(None, "v1")).save({"run": 1})
    marker = tmp_path / "writing"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_SAVE, str(target), str(marker)]
    )
    try:
        deadline = time.monotonic() + 60
        while (
            not marker.exists() and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert marker.exists(), "the save never started"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not (
        target / "v2" / target.name
    ).exists()  # nothing Kedro would take for an output
    leftovers = list((target / "v2").glob(f"{target.name}{PART_SUFFIX}*"))
    assert (
        len(leftovers) == 1 and leftovers[0].stat().st_size > 1_000_000
    )  # it did die mid-write
    assert (
        PickleDataset(filepath=str(target), version=Version("v2", None)).exists()
        is False
    )
    assert PickleDataset(filepath=str(target), version=Version(None, None)).load() == {
        "run": 1
    }
    # the next save of the dataset clears the dead save's temporary file once it is an hour old,
    # and leaves alone one still being written (another process's save in flight)
    save_v = lambda v: PickleDataset(
        filepath=str(target), version=Version(None, v)
    ).save({"v": v})  # noqa: E731
    save_v("v3")
    assert leftovers[0].exists()  # minutes old: it could be a save in flight
    hour_ago = time.time() - 3601
    os.utime(leftovers[0], (hour_ago, hour_ago))
    in_flight = target / "v3" / f"{target.name}{PART_SUFFIX}424242"
    in_flight.write_bytes(b"being written")
    save_v("v4")
    assert not leftovers[0].exists() and in_flight.exists()
    assert PickleDataset(filepath=str(target), version=Version(None, None)).load() == {
        "v": "v4"
    }


def test_every_dataset_class_clears_stale_temporary_files_after_a_save(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.envs import IdentityEnv

    from quant_arena.datasets import SB3ModelDataset

    model = PPO(
        "MlpPolicy", IdentityEnv(4), n_steps=16, batch_size=16, device="cpu", seed=0
    )
    cases = [(cls, name, payloads[0]) for cls, name, payloads in CASES]
    cases += [
        (MatplotlibDataset, "p.png", _figure("a")),
        (SB3ModelDataset, "m.zip", model),
    ]
    old = time.time() - 7200
    for cls, name, payload in cases:
        for versioned in (True, False):
            root = tmp_path / cls.__name__ / str(versioned)
            path = root / name
            stale = (path / "v1" if versioned else root) / f"{name}{PART_SUFFIX}1"
            stale.parent.mkdir(parents=True)
            stale.write_bytes(b"torn")
            os.utime(stale, (old, old))
            version = Version(None, "v2") if versioned else None
            cls(filepath=str(path), version=version).save(payload)
            assert not stale.exists(), (cls.__name__, versioned)
            assert [p.name for p in root.rglob("*") if p.is_file()] == [name], (
                cls.__name__,
                versioned,
            )


def test_a_model_save_that_fails_mid_write_leaves_no_zip(tmp_path, monkeypatch):
    from stable_baselines3 import PPO
    from stable_baselines3.common.envs import IdentityEnv

    from quant_arena.datasets import SB3ModelDataset

    model = PPO(
        "MlpPolicy", IdentityEnv(4), n_steps=16, batch_size=16, device="cpu", seed=0
    )
    path = tmp_path / "m.zip"
    _tear_writes(monkeypatch)
    with pytest.raises((DatasetError, OSError), match="No space left"):
        SB3ModelDataset(filepath=str(path), version=Version(None, "v1")).save(model)
    monkeypatch.undo()
    assert _files(tmp_path) == []
    SB3ModelDataset(filepath=str(path), version=Version(None, "v2")).save(model)
    assert (
        type(SB3ModelDataset(filepath=str(path), version=Version(None, None)).load())
        is PPO
    )
