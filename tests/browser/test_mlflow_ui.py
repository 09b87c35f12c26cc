"""The MLflow UI shows a study's runs the way a researcher compares them: the ``kedro run``'s
parent run with one child run per fold x strategy x seed nested under it, filterable by tag.

The store is the one the tiny study leaves behind (``tiny_study``: a real ``kedro run
--runner=ParallelRunner``, MLflow in ``<project>/mlflow.db``), served by ``mlflow ui`` and read
in Debian's Chromium. A screenshot of the expanded runs table goes to ``docs/mlflow_runs.png``
under ``QUANT_ARENA_SCREENSHOTS=docs``.
"""

from __future__ import annotations

import sys

import pytest
from mlflow import MlflowClient

from tests.browser._serve import free_port, running_server

pytestmark = pytest.mark.slow

RUN_NAME_LINKS = "[col-id='attributes.`Run Name`'] a"


def _children(client: MlflowClient, experiment_id: str, parent_id: str) -> list[str]:
    runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    return sorted(r.info.run_name for r in runs)


def test_the_mlflow_ui_nests_the_child_runs_under_the_kedro_run(tiny_study, page, screenshot, tmp_path):
    uri = f"sqlite:///{tiny_study / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("quant_arena")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.mlflow.parentRunId IS NULL")
    children = _children(client, experiment.experiment_id, parent.info.run_id)
    assert len(children) == 12 and "fold_1/ppo_mlp/seed_0" in children  # 2 folds x 6 strategies

    port = free_port()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    with running_server(command, f"http://127.0.0.1:{port}/health", log=tmp_path / "mlflow.log", timeout=90):
        page.goto(f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning")
        row = page.get_by_role("row").filter(has_text=parent.info.run_name)
        row.wait_for()
        # collapsed: the parent only; its expander shows the children nested under it
        assert page.locator(RUN_NAME_LINKS).all_inner_texts() == [parent.info.run_name]
        row.locator("button[data-component-id*='runnamecellrenderer']").click()
        page.get_by_role("row").filter(has_text="fold_0/buy_and_hold").wait_for()
        shown = page.locator(RUN_NAME_LINKS).all_inner_texts()
        assert shown[0] == parent.info.run_name and sorted(shown[1:]) == children
        close = page.get_by_role("button", name="Close")
        if close.count():  # the assistant panel, out of the screenshot's way
            close.first.click()
        screenshot(page, "mlflow_runs.png")
        # the agents alone, by tag, as a researcher compares seeds and folds
        search = page.locator("input[placeholder*='metrics.']").first  # the runs search box
        search.fill("tags.kind = 'agent'")
        search.press("Enter")
        page.get_by_text("5 matching runs").wait_for()
        agents = page.locator(RUN_NAME_LINKS).all_inner_texts()
        assert sorted(agents[1:]) == sorted(c for c in children if "/seed_" in c)
