"""The TradingEnv example in docs/environments.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "environments.md"


def test_trading_env_example_runs() -> None:
    section = DOC.read_text().split("## TradingEnv", 1)[1].split("\n## ", 1)[0]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(code) == 1
    exec(compile(code[0], f"{DOC}#TradingEnv", "exec"), {})
