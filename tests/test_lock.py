"""The lock (``constraints.txt``) is what a fresh machine installs, and it agrees with pyproject.

The README's two commands install with ``-c constraints.txt``, so every package, direct or
transitive, gets the version CI tested. ``.ci/refresh-lock`` rewrites the lock from a new venv.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PROJECT = "quant-arena"


def parse_lock(text: str) -> dict[str, Version]:
    """``name==version`` lines of a constraints file (comments and blank lines skipped)."""
    pins: dict[str, Version] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if m is None:
            raise ValueError(f"constraints.txt line {lineno}: expected name==version, got {raw!r}")
        name = canonicalize_name(m.group(1))
        if name in pins:
            raise ValueError(f"constraints.txt line {lineno}: {name} is pinned twice")
        pins[name] = Version(m.group(2))
    return pins


def declared_requirements(pyproject: dict) -> list[tuple[str, Requirement]]:
    """Every requirement pyproject.toml declares: dependencies and each extra (self-references
    such as ``quant_arena[test,bench]`` are expanded by listing those extras, so skipped)."""
    project = pyproject["project"]
    out = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        out += [(f"optional-dependencies.{extra}", Requirement(r)) for r in reqs]
    return [(where, r) for where, r in out if canonicalize_name(r.name) != PROJECT]


def disagreements(pyproject: dict, pins: dict[str, Version]) -> list[str]:
    """What pyproject asks for that the lock does not give (missing or outside the specifier)."""
    env = default_environment()
    problems = []
    for where, req in declared_requirements(pyproject):
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} ({where}) is not in constraints.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req} ({where}) but constraints.txt pins {name}=={pins[name]}")
    return problems


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_lock_satisfies_every_declared_requirement() -> None:
    pins = parse_lock(LOCK.read_text())
    assert disagreements(_pyproject(), pins) == []
    # the torch pin stays exactly the CPU wheel this team's machines carry
    assert pins["torch"] == Version("2.13.0")
    assert PROJECT not in pins, "the project itself must not be in its own lock"


def test_disagreement_check_catches_drift() -> None:
    """The check above is not vacuous: a lock that drops or contradicts a requirement fails it."""
    pyproject = {"project": {"dependencies": ["pandas>=2.2", "torch==2.13.0"], "optional-dependencies": {"test": ["pytest>=8"]}}}
    good = {"pandas": Version("2.3.0"), "torch": Version("2.13.0"), "pytest": Version("8.1")}
    assert disagreements(pyproject, good) == []
    assert disagreements(pyproject, {**good, "pandas": Version("2.1.0")}) == [
        "pandas>=2.2 (dependencies) but constraints.txt pins pandas==2.1.0"
    ]
    missing = {k: v for k, v in good.items() if k != "pytest"}
    assert disagreements(pyproject, missing) == ["pytest>=8 (optional-dependencies.test) is not in constraints.txt"]
    with pytest.raises(ValueError, match="line 2: expected name==version"):
        parse_lock("a==1\nb>=2\n")


def _installed_closure() -> dict[str, str]:
    """Every distribution the installed project needs (with its test extra), recursively, as
    evaluated for this interpreter: name -> installed version."""
    env = default_environment()
    versions: dict[str, str] = {}
    expanded: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(PROJECT, frozenset({"test"}))]
    while todo:
        item = todo.pop()
        if item in expanded:
            continue
        expanded.add(item)
        name, extras = item
        for raw in metadata.distribution(name).requires or []:
            req = Requirement(raw)
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": e}) for e in (extras or {""})
            ):
                continue
            dep = canonicalize_name(req.name)
            if dep == PROJECT:
                continue
            try:
                versions[dep] = metadata.version(dep)
            except metadata.PackageNotFoundError:  # pragma: no cover - pip installs what is required
                continue
            todo.append((dep, frozenset(req.extras)))
    return versions


def test_the_installed_environment_is_the_locked_one() -> None:
    """What is installed here (the project and its test extra, recursively) is all in the lock at
    exactly the locked versions: a fresh ``pip install -c constraints.txt -e ".[test]"`` gives
    this, and a lock that misses a transitive dependency fails here."""
    try:
        metadata.distribution(PROJECT)
    except metadata.PackageNotFoundError:  # pragma: no cover - the tests need the project installed
        pytest.skip("quant_arena is not installed (pip install -c constraints.txt -e '.[test]')")
    pins = parse_lock(LOCK.read_text())
    closure = _installed_closure()
    assert len(closure) > 50, closure  # the walk really followed the dependency tree
    missing = sorted(n for n in closure if n not in pins)
    assert missing == [], f"installed but not locked (run .ci/refresh-lock): {missing}"
    drift = sorted(
        f"{n} {v} installed, {pins[n]} locked" for n, v in closure.items() if Version(v).public != pins[n].public
    )
    assert drift == [], (
        "this environment is not the locked one; install with "
        f"`pip install -c constraints.txt -e '.[test]'` (or refresh the lock): {drift}"
    )


def test_readme_and_ci_install_through_the_lock() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^    (\S.*)$", section, flags=re.M)
    assert len(commands) == 2
    assert all(c.startswith("pip install -c constraints.txt -e ") for c in commands), commands
    assert "constraints.txt" in (ROOT / ".ci" / "refresh-lock").read_text()
