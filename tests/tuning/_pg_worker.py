"""A tuning worker for test_postgres_workers: cheap trials against a shared study.

Usage: python _pg_worker.py URL STUDY LOG_FILE SLOW_AT STOP_FILE

Appends ``start <n>``, ``slow <n>`` and ``done <n>`` lines to LOG_FILE (flushed and fsynced).
Its SLOW_AT-th trial (0-based, -1 = never) sleeps 120 s, so the test can kill the worker in the
middle of it. The worker stops once STOP_FILE exists.
"""

from __future__ import annotations

import os
import sys
import time

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState


def main() -> None:
    url, name, log_file, slow_at, stop_file = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # the same heartbeat settings quant_arena.tuning.make_storage sets from tune.storage
    storage = RDBStorage(url, engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=1, grace_period=2)
    study = optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=slow_at + 10))
    count = {"n": 0}

    def write(line: str) -> None:
        with open(log_file, "a") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def objective(trial: optuna.Trial) -> float:
        write(f"start {trial.number}")
        x = trial.suggest_float("x", 0.0, 1.0)
        if count["n"] == slow_at:
            write(f"slow {trial.number}")
            time.sleep(120)
        count["n"] += 1
        time.sleep(0.2)
        return x

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            write(f"done {trial.number}")
        if os.path.exists(stop_file):
            study.stop()

    study.optimize(objective, n_trials=500, callbacks=[callback])


if __name__ == "__main__":
    main()
