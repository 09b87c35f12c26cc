"""Run every benchmark and print one table: ``python -m benchmarks [--quick] [stage ...]``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

import benchmarks
from benchmarks._common import Result


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stages", nargs="*", help="only these stages (bench_<stage>.py)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures")
    args = parser.parse_args(argv)

    names = sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    if args.stages:
        unknown = set(args.stages) - set(names)
        if unknown:
            parser.error(f"unknown stage(s) {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in args.stages]

    results: list[Result] = []
    failed: list[str] = []
    for name in names:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            results.extend(module.run(quick=args.quick))
        except Exception:  # a missing peer or a crash in one stage must not hide the others
            traceback.print_exc()
            failed.append(name)

    header = ("stage", "metric", "ours", "peer", "peer value", "ours/peer", "target", "met", "note")
    rows = [
        (
            r.stage,
            r.metric,
            _fmt(r.ours),
            r.peer_name,
            _fmt(r.peer),
            _fmt(r.ratio),
            r.target,
            {None: "", True: "yes", False: "NO"}[r.ok],
            r.note,
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    line = " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)))
    if failed:
        print(f"\nstages that failed to run: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
