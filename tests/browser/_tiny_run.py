"""A tiny walk_forward study written through a project's REAL catalog (files in ``data/``).

:func:`tiny_walk_forward_project` copies the project (``tests._project.copy_project``), writes
the tiny synthetic market of ``tests/pipelines/walk_forward/_tiny.py`` as ``market_features``
and runs the walk_forward pipeline (folds, fan-in, summary, report; no data chain, no tear
sheets) with Kedro's SequentialRunner on the copy's own catalog (conf/base + conf/ci): every
catalog output is a versioned file where ``kedro run`` would write it. ~15 s: one PPO agent,
one seed, two folds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from kedro.io import MemoryDataset
from kedro.runner import SequentialRunner

from quant_arena.dashboard import project_catalog
from quant_arena.pipelines.walk_forward.pipeline import create_pipeline
from quant_arena.study import WalkForwardConfig
from tests._project import conf_parameters, copy_project
from tests.pipelines.walk_forward import _tiny


def tiny_walk_forward_project(dst: Path) -> Path:
    """A project copy at ``dst`` holding the outputs of a tiny walk_forward run; returns ``dst``."""
    torch.set_num_threads(1)
    project = copy_project(dst, raw=False)
    params = _tiny.params(agents=("ppo_mlp",), seeds=(0,))
    report = {**conf_parameters("ci")["report"], "tearsheets": []}
    catalog = project_catalog(project, env="ci")
    catalog.save("market_features", _tiny.market_features())
    for name, value in {
        "params:walk_forward": params,
        "params:baselines": _tiny.BASELINES,
        "params:features": _tiny.FEATURE_PARAMS,
        "params:report": report,
    }.items():
        catalog[name] = MemoryDataset(value)
    pipe = create_pipeline(
        WalkForwardConfig.model_validate(params), with_data=False, with_report=True
    )
    SequentialRunner().run(pipe, catalog)
    return project
