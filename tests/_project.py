"""A throw-away copy of the Kedro project for tests that run it for real (KedroSession or CLI)."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_project(dst: Path, raw: bool = True) -> Path:
    """pyproject, .telemetry and conf (without a developer's conf/local) copied to ``dst``, with
    empty data layers and, with ``raw``, the shipped raw files. ``src`` is an empty folder: the
    package itself is installed, Kedro only checks the folder exists. Returns ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    shutil.copy(ROOT / ".telemetry", dst / ".telemetry")
    shutil.copytree(ROOT / "conf", dst / "conf", ignore=shutil.ignore_patterns("local"))
    (dst / "conf" / "local").mkdir()
    (dst / "src").mkdir()
    (dst / "data" / "01_raw").mkdir(parents=True)
    if raw:
        for f in (ROOT / "data" / "01_raw").iterdir():
            if f.is_file() and not f.name.startswith("."):
                shutil.copy(f, dst / "data" / "01_raw" / f.name)
    return dst


def conf_parameters(env: str = "base") -> dict:
    """The project's parameters as a run sees them: ``conf/base`` merged with ``env`` through
    Kedro's config loader and the project's settings (``${...}`` interpolations resolved)."""
    from kedro.config import OmegaConfigLoader

    from quant_arena.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return dict(loader["parameters"])
