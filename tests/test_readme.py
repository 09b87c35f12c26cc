"""The README's quick start is the contract with users and with CI: keep it true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^    (\S.*)$", section, flags=re.M)


def test_quick_start_has_exactly_two_commands() -> None:
    commands = _quick_start_commands()
    assert commands == [
        "pip install -c constraints.txt -e . && kedro run --pipeline=walk_forward --runner=ParallelRunner",
        'pip install -c constraints.txt -e ".[test]" && pytest',
    ]


def test_ci_runs_the_readme_test_command() -> None:
    script = ROOT / ".ci" / "run"
    extracted = subprocess.run(
        ["bash", "-c", "sed -n 's/^    \\(pip install .*-e \"\\.\\[test\\]\" && .*\\)$/\\1/p' README.md | head -n 1"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == _quick_start_commands()[1]
    assert "bash -c \"$cmd\"" in script.read_text()


def test_telemetry_is_off_in_the_project() -> None:
    assert (ROOT / ".telemetry").read_text().strip() == "consent: false"


def test_mlflow_defaults_to_a_local_sqlite_store() -> None:
    text = (ROOT / "conf" / "base" / "mlflow.yml").read_text()
    assert "sqlite:///mlflow.db" in text
