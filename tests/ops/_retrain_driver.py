"""``kedro run`` in this process with a planted fault: the process SIGKILLs itself at a named point
of a retrain (what a crash, an OOM kill or a preempted machine does), for the kill tests.

    python tests/ops/_retrain_driver.py <point> <kedro run arguments...>

Points: ``training`` (while the challenger trains), ``register`` (after the challenger's model
version exists, before any alias moves), ``champion_alias`` (inside the promotion, holding the
registry lock, as the champion alias is about to move).
"""

from __future__ import annotations

import os
import signal
import sys


def _die(*_args, **_kwargs):
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def plant(point: str) -> None:
    if point == "training":
        import quant_arena.study.walk_forward as wf

        wf.train_fold_agent = _die
    elif point == "register":
        from quant_arena.ops import ModelRegistry

        ModelRegistry.set_challenger = _die
    elif point == "champion_alias":
        from mlflow import MlflowClient

        original = MlflowClient.set_registered_model_alias

        def set_alias(self, name, alias, version):
            if alias == "champion":
                _die()
            return original(self, name, alias, version)

        MlflowClient.set_registered_model_alias = set_alias
    else:
        raise SystemExit(f"unknown fault point {point!r}")


if __name__ == "__main__":
    plant(sys.argv[1])
    from kedro.framework.cli.cli import main

    sys.argv = ["kedro", "run", *sys.argv[2:]]
    main()
