"""Worker processes for the registry and lock tests (run as ``python -m tests.ops._registry_worker``).

* ``actions``: load a version by alias from the registry and write its out-of-sample run (npz);
* ``promote``: wait for the ``go`` file, then promote (``--slow`` widens the window between reading
  the champion and moving it, as a slow registry would); writes the result (json);
* ``hold``: take the promotion lock and hold it until killed;
* ``register``: register a bundle and hang until killed (a retrain killed before it promotes).
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["actions", "promote", "hold", "register"])
    p.add_argument("--uri", required=True)
    p.add_argument("--model", default="m")
    p.add_argument("--alias", default="champion")
    p.add_argument("--table")
    p.add_argument("--start", type=int)
    p.add_argument("--end", type=int)
    p.add_argument("--out")
    p.add_argument("--version")
    p.add_argument("--expected")
    p.add_argument("--ready")
    p.add_argument("--go")
    p.add_argument("--slow", action="store_true")
    p.add_argument("--bundle")
    args = p.parse_args()

    # each command imports only what it needs (the bundle module brings torch and the studies)
    if args.command == "hold":
        from quant_arena.ops.lock import promotion_lock

        lock = promotion_lock(args.uri, args.model, lease=600.0).acquire()
        Path(args.ready).write_text(str(lock))
        time.sleep(600)
        return
    from quant_arena.ops.registry import ModelRegistry

    registry = ModelRegistry(args.model, args.uri)
    if args.command == "actions":
        from quant_arena.ops.bundle import bundle_actions

        bundle = registry.load(args.alias)
        with open(args.table, "rb") as handle:
            table = pickle.load(handle)
        result = bundle_actions(bundle, table, args.start, args.end)
        np.savez(
            args.out,
            positions=result.positions,
            returns=result.returns,
            equity=result.equity,
            **{f"ledger_{k}": v for k, v in result.columns.items()},
        )
        return
    if args.command == "register":
        from quant_arena.ops.bundle import load_bundle

        version = registry.register(load_bundle(args.bundle))
        Path(args.ready).write_text(version)
        time.sleep(600)
        return
    # promote
    if args.slow:
        read = ModelRegistry.version_of

        def slow_version_of(self, alias):
            out = read(self, alias)
            time.sleep(1.0)
            return out

        ModelRegistry.version_of = slow_version_of
    registry.lock()  # nothing acquired: imports done before the start line
    Path(args.ready).write_text("ready")
    _wait_for(Path(args.go))
    expected = None if args.expected in (None, "none") else args.expected
    ok = registry.promote(
        args.version,
        expected_champion=expected,
        reason=f"worker promoting {args.version}",
    )
    Path(args.out).write_text(json.dumps({"version": args.version, "promoted": ok}))


if __name__ == "__main__":
    main()
