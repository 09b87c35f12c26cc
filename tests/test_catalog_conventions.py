"""Every dataset of every registered pipeline, resolved against the project's real catalog.

conf/base/catalog.yml's header is the naming convention: a name's suffix says what the dataset is
(``*_model`` an SB3 zip, ``*_report`` a parquet table, ``*_params`` a JSON dict, ...). Here:

1. the suffixes the header documents are exactly the ones this test knows, and every dataset
   factory of the catalog has the type (and versioning) its suffix promises;
2. every dataset a registered pipeline reads or writes resolves, through the real catalog
   (conf/base, and conf/base + conf/ci), to the type its suffix promises;
3. a node writing a ``*_<suffix>`` dataset is annotated to return what that dataset can store
   (a dict is not an SB3 model: ``synthetic_model`` was), when its annotation says anything;
4. no dataset a pipeline hands to ANOTHER pipeline silently falls to a MemoryDataset. The rule,
   per registered pipeline: its free inputs (read but not written by it: what another pipeline
   must have written) and its final outputs (written and read by none of its nodes: what it is
   run for) are catalog entries, i.e. files. Only hand-offs between the nodes of one pipeline
   may stay in memory; a name that another pipeline reads is a free input of that pipeline, so
   this covers every cross-pipeline hand-off.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog
from matplotlib.figure import Figure
from stable_baselines3.common.base_class import BaseAlgorithm

from quant_arena.datasets import (  # the project's own: every local save is atomic
    JSONDataset,
    MatplotlibDataset,
    ParquetDataset,
    PickleDataset,
    SB3ModelDataset,
    TextDataset,
)

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "conf" / "base" / "catalog.yml"

#: suffix -> the dataset class the catalog's header promises for it.
CONVENTION: dict[str, type] = {
    "_quarantine": ParquetDataset,
    "_ohlcv": ParquetDataset,
    "_features": ParquetDataset,
    "_model_input": ParquetDataset,
    "_feature_list": JSONDataset,
    "_scaler": PickleDataset,
    "_model": SB3ModelDataset,
    "_report": ParquetDataset,
    "_plot": MatplotlibDataset,
    "_table": ParquetDataset,
    "_markdown": TextDataset,
    "_html": TextDataset,
    "_params": JSONDataset,
    "_artifact": PickleDataset,
    "_alerts": JSONDataset,
}

#: dataset class -> what a node may return into it (PickleDataset: anything).
STORES: dict[type, tuple[type, ...]] = {
    ParquetDataset: (pd.DataFrame,),
    SB3ModelDataset: (BaseAlgorithm,),
    MatplotlibDataset: (Figure, dict, list),
    JSONDataset: (dict, list),
    TextDataset: (str,),
    PickleDataset: (object,),
}

ENVS = ("base", "ci")


def suffix_of(name: str) -> str | None:
    """The convention suffix of a dataset name (the longest that matches), or None."""
    base = name.rsplit(".", 1)[-1]
    hits = [s for s in CONVENTION if base.endswith(s) and len(base) > len(s)]
    return max(hits, key=len) if hits else None


def documented_suffixes(text: str) -> set[str]:
    """The suffixes in the catalog's header table (the comment lines before the first entry)."""
    header = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            break
        header.append(line)
    out: set[str] = set()
    for line in header:
        if "{name}" in line:
            out |= set(re.findall(r"(?:\{name\}|/ )(_[a-z_]+)", line))
    return out


def _loader(env: str) -> OmegaConfigLoader:
    args = {
        **dict(settings.CONFIG_LOADER_ARGS),
        "base_env": "base",
        "default_run_env": env,
    }
    return OmegaConfigLoader(conf_source=str(ROOT / "conf"), **args)


@pytest.fixture(scope="module", autouse=True)
def _project() -> None:
    """The project's settings (config loader, resolvers); also clears a pipeline filter that an
    earlier in-process ``kedro run`` left (Kedro then builds only the pipelines it ran)."""
    bootstrap_project(ROOT)


@pytest.fixture(scope="module")
def registry_by_env() -> dict[str, dict]:
    """The registered pipelines, built from conf/base (+ conf/ci) of this project."""
    from quant_arena.pipeline_registry import register_pipelines

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(
            ROOT
        )  # walk_forward's shape is read from the project holding the working directory
        for env in ENVS:
            mp.setenv("KEDRO_ENV", env)
            out[env] = register_pipelines()
    return out


@pytest.fixture(scope="module")
def catalog_by_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DataCatalog]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "MLFLOW_TRACKING_URI",
            f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}",
        )
        return {env: DataCatalog.from_config(_loader(env)["catalog"]) for env in ENVS}


def _datasets(registry: dict) -> list[str]:
    names: set[str] = set()
    for pipe in registry.values():
        names |= pipe.datasets()
    return sorted(n for n in names if not n.startswith("params:") and n != "parameters")


def test_the_header_documents_exactly_the_known_suffixes() -> None:
    assert documented_suffixes(CATALOG.read_text()) == set(CONVENTION)


def test_every_factory_has_the_type_its_suffix_promises() -> None:
    config = _loader("base")["catalog"]
    factories = {name: entry for name, entry in config.items() if "{" in name}
    assert factories, "no dataset factory in conf/base/catalog.yml"
    for pattern, entry in factories.items():
        suffix = suffix_of(pattern.replace("{name}", "x").replace("{namespace}", "ns"))
        assert suffix, (
            f"catalog factory {pattern!r} has no suffix from the header's table"
        )
        cls = CONVENTION[suffix]
        assert entry["type"].rsplit(".", 1)[-1] == cls.__name__, (
            f"{pattern}: {entry['type']}, but {suffix} promises {cls.__name__}"
        )
        assert entry.get("versioned") is True, f"{pattern} is not versioned"


def test_the_registry_holds_every_pipeline_folder(registry_by_env: dict) -> None:
    folders = {
        p.name
        for p in (ROOT / "src" / "quant_arena" / "pipelines").iterdir()
        if (p / "pipeline.py").is_file()
    }
    for env, registry in registry_by_env.items():
        assert set(registry) == folders | {"__default__"}, env
        assert all(len(p.nodes) for p in registry.values()), env


@pytest.mark.parametrize("env", ENVS)
def test_every_dataset_resolves_to_the_type_its_name_promises(
    env: str, registry_by_env: dict, catalog_by_env: dict
) -> None:
    registry, catalog = registry_by_env[env], catalog_by_env[env]
    wrong, checked = [], set()
    for name in _datasets(registry):
        suffix = suffix_of(name)
        if suffix is None:
            continue
        dataset = catalog.get(name)
        expected = CONVENTION[suffix]
        if not isinstance(dataset, expected):
            wrong.append(
                f"{name}: {type(dataset).__name__ if dataset is not None else 'MemoryDataset (no catalog entry)'}, "
                f"but {suffix} promises {expected.__name__}"
            )
        checked.add(suffix)
    assert not wrong, (
        "datasets whose catalog type breaks the naming convention:\n  "
        + "\n  ".join(wrong)
    )
    assert {
        "_model",
        "_report",
        "_plot",
        "_table",
        "_params",
        "_artifact",
        "_ohlcv",
    } <= checked


def _return_types(node) -> list[typing.Any] | None:
    """The annotated return type of each output of a node, or None when it is not annotated."""
    func = inspect.unwrap(node.func)
    try:
        ret = typing.get_type_hints(func).get("return")
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved says nothing
        return None
    if ret is None:
        return None
    n = len(node.outputs)
    if n == 1:
        return [ret]
    if typing.get_origin(ret) is tuple:
        args = typing.get_args(ret)
        if len(args) == 2 and args[1] is Ellipsis:
            return [args[0]] * n
        if len(args) == n:
            return list(args)
    return None


def _can_store(annotation: typing.Any, allowed: tuple[type, ...]) -> bool | None:
    """Whether a value of the annotated type fits the dataset; None when the annotation cannot tell."""
    if annotation is typing.Any or isinstance(annotation, typing.TypeVar):
        return None
    if typing.get_origin(annotation) in (
        typing.Union,
        getattr(__import__("types"), "UnionType", None),
    ):
        verdicts = [
            _can_store(a, allowed)
            for a in typing.get_args(annotation)
            if a is not type(None)
        ]
        return None if None in verdicts else all(verdicts)
    cls = typing.get_origin(annotation) or annotation
    if not isinstance(cls, type):
        return None
    return issubclass(cls, allowed)


@pytest.mark.parametrize("env", ENVS)
def test_nodes_return_what_their_output_dataset_can_store(
    env: str, registry_by_env: dict, catalog_by_env: dict
) -> None:
    """A ``*_model`` output of a node annotated ``-> dict`` is a dict in an SB3 zip dataset: the
    run would fail at save time, after the node did its work (``synthetic_model`` did)."""
    registry, catalog = registry_by_env[env], catalog_by_env[env]
    wrong, checked = [], 0
    for pipe in registry.values():
        for node in pipe.nodes:
            types = _return_types(node)
            if types is None:
                continue
            for name, annotation in zip(node.outputs, types, strict=True):
                dataset = catalog.get(name)
                allowed = next(
                    (v for k, v in STORES.items() if isinstance(dataset, k)), None
                )
                if allowed is None:
                    continue
                verdict = _can_store(annotation, allowed)
                if verdict is False:
                    wrong.append(
                        f"{node.name} returns {annotation} into {name} ({type(dataset).__name__}: "
                        f"stores {', '.join(a.__name__ for a in allowed)})"
                    )
                checked += verdict is not None
    assert not wrong, "node outputs the catalog cannot store:\n  " + "\n  ".join(
        sorted(set(wrong))
    )
    assert checked >= 20, f"only {checked} node outputs had a telling annotation"


@pytest.mark.parametrize("env", ENVS)
def test_what_pipelines_hand_to_each_other_is_never_only_in_memory(
    env: str, registry_by_env: dict, catalog_by_env: dict
) -> None:
    registry, catalog = registry_by_env[env], catalog_by_env[env]
    memory = []
    for pname, pipe in sorted(registry.items()):
        free = {
            n
            for n in pipe.inputs()
            if not n.startswith("params:") and n != "parameters"
        }
        for name in sorted(free | pipe.outputs()):
            if name not in catalog:
                role = "reads" if name in free else "writes as a final output"
                memory.append(
                    f"{pname} {role} {name}, which has no catalog entry (a MemoryDataset)"
                )
    assert not memory, "\n  ".join(
        ["datasets handed between pipelines only in memory:", *memory]
    )
    # the rule has teeth: some in-memory hand-offs exist inside pipelines and are allowed there
    inner = [n for n in _datasets(registry) if n not in catalog]
    assert inner, "expected some in-memory hand-offs between the nodes of one pipeline"


def test_the_convention_helpers() -> None:
    assert suffix_of("train_rl_model_input") == "_model_input"
    assert suffix_of("walk_forward.fold_0.ppo_mlp_seed_0_model") == "_model"
    assert suffix_of("synthetic_market_params") == "_params"
    assert suffix_of("train_rl_split") is None and suffix_of("_model") is None
    assert documented_suffixes(
        "#   {name}_a  x\n#   {name}_b / _c  y\n#   *_d\nkey: 1\n#   {name}_e"
    ) == {"_a", "_b", "_c"}
    assert _can_store(dict[str, typing.Any], (BaseAlgorithm,)) is False
    assert _can_store(typing.Any, (BaseAlgorithm,)) is None
    assert _can_store(pd.DataFrame | None, (pd.DataFrame,)) is True
    assert _can_store(list[str], (dict, list)) is True
