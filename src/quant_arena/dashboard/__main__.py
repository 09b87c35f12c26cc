"""``python -m quant_arena.dashboard [--project DIR] [--env ENV] [--port 8501] [--address 127.0.0.1]``:
the results dashboard of a project folder, served by Streamlit (headless, no usage statistics)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def streamlit_command(
    project: Path, env: str | None, port: int, address: str
) -> list[str]:
    """The ``streamlit run`` command line that serves the dashboard of ``project``."""
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", address,
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--runner.magicEnabled", "false",
        "--client.toolbarMode", "minimal",
        "--", "--project", str(project),
    ]  # fmt: skip
    return cmd + (["--env", env] if env else [])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m quant_arena.dashboard", description=__doc__
    )
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="the Kedro project folder (default: here)",
    )
    parser.add_argument(
        "--env",
        default=None,
        help="the Kedro environment of the runs (default: KEDRO_ENV, else local)",
    )
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument(
        "--address",
        default="127.0.0.1",
        help="listen address (0.0.0.0 to serve other machines)",
    )
    args = parser.parse_args(argv)
    cmd = streamlit_command(args.project.resolve(), args.env, args.port, args.address)
    os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    os.execv(sys.executable, cmd)


if __name__ == "__main__":
    main()
