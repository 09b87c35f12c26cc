"""Mutation testing of the modules that decide results, one module at a time, with mutmut.

    python tools/mutation.py                    # every module of tools/mutation.toml, in order
    python tools/mutation.py metrics folds      # only these
    python tools/mutation.py --list             # the modules and their tests
    python tools/mutation.py --report           # re-print the last results, run nothing
    python tools/mutation.py --resume metrics   # only the mutants a cut-short run left unchecked

Each module runs mutmut in its own work folder ``mutants/<module>/`` (git-ignored): the
source and tests are copied there by mutmut, only the module's file (or the functions its
``only`` globs name) is mutated, and only the module's tests (``tests``) run against its
mutants, so one module takes minutes, not hours. ``../shared`` is linked beside the copy so the
tests that read ``../shared/data`` see the same data as a normal run.

The report (printed, and written to ``mutants/report.md``) gives, per module, the score
(killed / all mutants; a timeout counts as killed, a mutant no test reaches as a survivor)
and every survivor's name and diff. ``mutmut`` results are cached in the work folder: a
second run only re-tests what changed; ``--fresh`` deletes the folder first.
Not part of ``pytest`` or ``.ci/run`` (it takes far longer than CI's budget).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tools" / "mutation.toml"
WORK = ROOT / "mutants"
# killed, pytest error, timeouts, type check; -6 / -11: the test process crashed (SIGABRT,
# SIGSEGV; e.g. a mutant that makes the compiled step write outside its buffer): the run fails
KILLED = {1, 3, 36, -24, 24, 152, 255, 37, -6, -11}
STATUS = {
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    None: "not checked",
}


def say(*parts: object, flush: bool = True) -> None:
    print(*parts, flush=flush)  # noqa: T201 - a command-line tool reports on stdout


def load_modules() -> dict[str, dict]:
    modules = tomllib.loads(CONFIG.read_text())
    for name, spec in modules.items():
        path = ROOT / spec["path"]
        if not path.is_file():
            sys.exit(f"{CONFIG.name} [{name}]: path {spec['path']} is not a file")
        for test in spec["tests"]:
            if not (ROOT / test.split("::")[0]).exists():
                sys.exit(f"{CONFIG.name} [{name}]: test {test} does not exist")
    return modules


def module_name(path: str) -> str:
    rel = Path(path).with_suffix("")
    parts = rel.parts[1:] if rel.parts[0] == "src" else rel.parts
    return ".".join(parts)


def function_globs(path: Path) -> dict[str, str]:
    """mutmut's mutant-name glob of each top-level function and method of a source file."""
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out[node.name] = f"x_{node.name}__mutmut_*"
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    out[f"{node.name}.{item.name}"] = (
                        f"x\u01c1{node.name}\u01c1{item.name}__mutmut_*"
                    )
    return out


def patterns(spec: dict) -> list[str]:
    """The mutant-name globs in scope: ``only``, or every function but those ``skip`` names."""
    mod = module_name(spec["path"])
    globs = spec.get("only")
    if globs is None:
        skip = set(spec.get("skip", []))
        funcs = function_globs(ROOT / spec["path"])
        unknown = skip - set(funcs)
        if unknown:
            sys.exit(
                f"{CONFIG.name}: skip names no function of {spec['path']}: {sorted(unknown)}"
            )
        globs = [g for name, g in funcs.items() if name not in skip] if skip else ["*"]
    return [f"{mod}.{glob}" for glob in globs]


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare(name: str, spec: dict, fresh: bool) -> Path:
    """The module's work folder: links to src/ and tests/, a pyproject.toml with [tool.mutmut]."""
    work = WORK / name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for link in ("src", "tests", "conf", "data", ".telemetry"):
        target = work / link
        if not target.exists() and (ROOT / link).exists():
            target.symlink_to(ROOT / link)
    shared = ROOT.parent / "shared"
    if shared.exists() and not (work / "shared").exists():
        (work / "shared").symlink_to(shared.resolve())
    copy = work / "mutants"
    copy.mkdir(exist_ok=True)
    for folder in (
        "conf",
        "data",
        "docs",  # tests/envs run the documented examples of docs/environments.md
    ):  # read by some tests; copied, so a test cannot write the real one
        if (ROOT / folder).exists() and not (copy / folder).exists():
            shutil.copytree(ROOT / folder, copy / folder)
    pyproject = (ROOT / "pyproject.toml").read_text()
    pyproject += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list([spec['path']])}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(spec['tests'])}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly"]\n'
    )
    (work / "pyproject.toml").write_text(pyproject)
    return work


def unchecked(name: str, spec: dict) -> list[str] | None:
    """The in-scope mutants without a result yet (None before a first run has listed them)."""
    meta = WORK / name / "mutants" / (spec["path"] + ".meta")
    if not meta.is_file():
        return None
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    globs = patterns(spec)
    return sorted(
        k
        for k, v in codes.items()
        if v is None and any(fnmatch.fnmatch(k, g) for g in globs)
    )


def run_module(
    name: str, spec: dict, children: int, fresh: bool, resume: bool = False
) -> float:
    work = prepare(name, spec, fresh)
    # mutmut re-tests EVERY mutant its arguments name, cached or not: a glob re-runs the whole
    # module; --resume names only the mutants a cut-short run left unchecked
    todo = unchecked(name, spec) if resume else None
    if todo == []:
        say(f"== {name}: every mutant has a result (nothing to resume)")
        return 0.0
    env = dict(os.environ)
    env.pop(
        "PYTHONPATH", None
    )  # mutmut puts the mutated copy first; nothing else from src
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", MPLBACKEND="Agg")
    cmd = [
        shutil.which("mutmut") or "mutmut",
        "run",
        "--max-children",
        str(children),
        *(todo if todo else patterns(spec)),
    ]
    say(f"== {name}: {spec['path']} against {' '.join(spec['tests'])}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    took = time.monotonic() - start
    if proc.returncode != 0:
        say(proc.stdout[-4000:])
        sys.exit(f"mutmut failed for {name} (exit {proc.returncode})")
    done = (
        float((work / "seconds.txt").read_text())
        if resume and (work / "seconds.txt").exists()
        else 0.0
    )
    (work / "seconds.txt").write_text(f"{took + done:.0f}\n")
    return took


def results(name: str, spec: dict) -> dict | None:
    work = WORK / name
    meta = work / "mutants" / (spec["path"] + ".meta")
    if not meta.is_file():
        return None
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    globs = patterns(spec)
    codes = {
        k: v for k, v in codes.items() if any(fnmatch.fnmatch(k, g) for g in globs)
    }
    survivors = {
        k: STATUS.get(v, f"exit {v}") for k, v in codes.items() if v not in KILLED
    }
    seconds = (
        (work / "seconds.txt").read_text().strip()
        if (work / "seconds.txt").exists()
        else "?"
    )
    return {
        "total": len(codes),
        "killed": len(codes) - len(survivors),
        "survivors": survivors,
        "seconds": seconds,
    }


_DIFFS = """
import json, sys
from difflib import unified_diff
import libcst as cst
from mutmut.mutation.diff_apply import read_mutant_function, read_original_function
path, names = sys.argv[1], json.loads(sys.stdin.read())
module = cst.parse_module(open("mutants/" + path).read())
out = {}
for name in names:
    a, b = (cst.Module([f]).code.strip().split("\\n") for f in (read_original_function(module, name), read_mutant_function(module, name)))
    out[name] = [x for x in unified_diff(a, b, lineterm="") if x[:1] in "+-" and x[:3] not in ("---", "+++")]
print(json.dumps(out))
"""


def diffs(name: str, spec: dict, mutants: list[str]) -> dict[str, list[str]]:
    """Each mutant's changed lines, read from mutmut's mutated copy in one process."""
    proc = subprocess.run(
        [sys.executable, "-c", _DIFFS, spec["path"]],
        cwd=WORK / name,
        input=json.dumps(mutants),
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def report(modules: dict[str, dict], names: list[str], with_diffs: bool = True) -> str:
    out = [
        "# Mutation testing report",
        "",
        "| module | killed | mutants | score | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    details: list[str] = []
    killed = total = 0
    for name in names:
        res = results(name, modules[name])
        if res is None:
            out.append(f"| {name} | not run | | | |")
            continue
        killed += res["killed"]
        total += res["total"]
        score = 100.0 * res["killed"] / res["total"] if res["total"] else 100.0
        out.append(
            f"| {name} | {res['killed']} | {res['total']} | {score:.1f} % | {res['seconds']} |"
        )
        if res["survivors"]:
            details += ["", f"## {name}: {len(res['survivors'])} survivors", ""]
            changed = (
                diffs(name, modules[name], sorted(res["survivors"]))
                if with_diffs
                else {}
            )
            for mutant, status in sorted(res["survivors"].items()):
                details.append(f"- `{mutant}` ({status})")
                if with_diffs:
                    details += ["", "```diff", *changed[mutant], "```"]
    if total:
        out.append(
            f"| **total** | {killed} | {total} | {100.0 * killed / total:.1f} % | |"
        )
    return "\n".join(out + details) + "\n"


def main() -> None:
    modules = load_modules()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "modules", nargs="*", help=f"module names from {CONFIG.name} (default: all)"
    )
    parser.add_argument(
        "--children", type=int, default=2, help="parallel mutmut workers (default 2)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete the module's cached results first"
    )
    parser.add_argument(
        "--report", action="store_true", help="only print the last results"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="test only the mutants without a result (after a run was cut short); adds to seconds",
    )
    parser.add_argument("--list", action="store_true", help="list the modules")
    args = parser.parse_args()
    names = args.modules or list(modules)
    unknown = [n for n in names if n not in modules]
    if unknown:
        sys.exit(f"unknown module(s) {unknown}; known: {list(modules)}")
    if args.list:
        for n in names:
            say(f"{n}: {modules[n]['path']} <- {' '.join(modules[n]['tests'])}")
        return
    if not args.report:
        for n in names:
            took = run_module(n, modules[n], args.children, args.fresh, args.resume)
            say(f"   {n}: {took:.0f} s", flush=True)
    text = report(modules, names)
    WORK.mkdir(exist_ok=True)
    (WORK / "report.md").write_text(text)
    say(text)


if __name__ == "__main__":
    main()
