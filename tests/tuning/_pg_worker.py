"""One of the project's own tune workers, for test_postgres_workers.

Usage: QUANT_ARENA_TUNE_STORAGE=URL python _pg_worker.py LOG_FILE SAMPLER_SEED N_TRIALS

It does what ``kedro run --pipeline=tune`` does for its tuning node, without the data chain in
front of it:

- the storage URL is what the project's catalog entry ``tune_storage`` (conf/base/catalog.yml,
  a ``TuneStorageDataset`` reading ``QUANT_ARENA_TUNE_STORAGE``) loads, through Kedro's config
  loader with the project's ``CONFIG_LOADER_ARGS``;
- the node is the project's ``run_tuning`` (``run_study`` with the project objective, then the
  whole-study summary), on the tuning tests' tiny series;
- the ``tune`` block is the tuning tests' tiny one (one inner fold, one seed, 128 training steps
  per trial, pruner off so every trial a live worker runs completes) with this worker's
  ``sampler_seed``, ``n_trials`` and a heartbeat every second, 2 s grace period.

LOG_FILE receives the project's log records (INFO and up, e.g. ``tune: trial 3 COMPLETE ...``)
and ``start N`` each time a trial enters the project objective (a pass-through wrapper: nothing
else is changed), flushed and fsynced so the test can read them while the worker runs.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]


class _SyncedHandler(logging.FileHandler):
    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()
        os.fsync(self.stream.fileno())


def main() -> None:
    log_file, seed, n_trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    handler = _SyncedHandler(log_file)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)
    warnings.filterwarnings(
        "ignore", message="register_new_resolver", category=UserWarning
    )

    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from quant_arena.settings import CONFIG_LOADER_ARGS

    # conf/base only: a developer's conf/local may point tune_storage elsewhere
    loader = OmegaConfigLoader(
        str(PROJECT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "base"}
    )
    catalog = DataCatalog.from_config(
        {"tune_storage": loader["catalog"]["tune_storage"]}
    )
    storage_url = catalog.load("tune_storage")

    import quant_arena.study.tune.run as objective_module
    from quant_arena.pipelines.tune.nodes import run_tuning

    project_objective = objective_module.objective_value

    def objective_value(trial, data, config):  # run_tune's objective looks it up at call time
        logging.getLogger("worker").info("start %d", trial.number)
        return project_objective(trial, data, config)

    objective_module.objective_value = objective_value

    sys.path.insert(0, str(PROJECT))  # _data builds its market with tests._markets
    sys.path.insert(0, str(HERE))
    import _data

    params = _data.params(
        study_name="two_workers",
        n_trials=n_trials,
        sampler_seed=seed,
        pruner="none",
        storage={"heartbeat_interval": 1, "grace_period": 2},
    )
    table, best, _ = run_tuning(_data.features(), storage_url, params)
    logging.getLogger("worker").info(
        "finished: %d trials in the study, %d complete", len(table), best["n_complete"]
    )


if __name__ == "__main__":
    main()
