"""Learning curves (plot, leaderboard sections, step-indexed MLflow metrics) and the "did it learn?" table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_arena.reporting.leaderboard import (
    build_leaderboard,
    leaderboard_html,
    leaderboard_markdown,
)
from quant_arena.reporting.learning import (
    learning_curve_metrics,
    learning_curve_summary,
)
from quant_arena.reporting.plots import plot_learning_curves
from tests.reporting.synthetic import make_walk_forward_results


def curves(points: dict[tuple[int, str, int], int]) -> pd.DataFrame:
    """A learning curve report with ``points[(fold, agent, seed)]`` evaluations per curve."""
    rows = []
    for (fold, agent, seed), n in points.items():
        for i in range(n):
            rows.append(
                {
                    "fold": fold,
                    "agent": agent,
                    "seed": seed,
                    "timesteps": 1000 * (i + 1),
                    "val_sharpe": 0.1 * i - 0.2 * seed,
                    "train_episode_reward_mean": np.nan,
                    "train_reward_mean": 1e-4 * (i + fold),
                    "improved": i == n - 1,
                    "evals_without_improvement": 0,
                }
            )
    return pd.DataFrame(rows)


POINTS = {
    (0, "ppo_mlp", 0): 3,
    (0, "ppo_mlp", 1): 5,
    (1, "ppo_mlp", 0): 4,
    (1, "ppo_mlp", 1): 2,
    (0, "sac_mlp", 0): 6,
    (1, "sac_mlp", 0): 1,
}


def test_learning_curve_plot_has_one_line_per_seed_and_fold_with_one_point_per_evaluation():
    fig = plot_learning_curves(curves(POINTS), order=["sac_mlp", "ppo_mlp"])
    axes = fig.axes
    assert len(axes) == 4  # two agents x (training reward, validation Sharpe)
    for row, agent in enumerate(["sac_mlp", "ppo_mlp"]):
        want = sorted(n for (f, a, s), n in POINTS.items() if a == agent)
        for ax in axes[2 * row : 2 * row + 2]:
            assert agent in ax.get_title()
            assert (
                sorted(
                    len(line.get_xdata())
                    for line in ax.get_lines()
                    if line.get_marker() == "o"
                )
                == want
            )
    reward_line = axes[2].get_lines()[
        0
    ]  # ppo_mlp fold 0 seed 0: the per-step reward, not the all-NaN episode column
    np.testing.assert_allclose(reward_line.get_ydata(), [0.0, 1e-4, 2e-4])
    np.testing.assert_allclose(reward_line.get_xdata(), [1000, 2000, 3000])


def test_step_metrics_carry_the_env_steps():
    triples = learning_curve_metrics(curves(POINTS))
    val = [
        (v, s) for k, v, s in triples if k == "fold_0.ppo_mlp.seed_1.train.val_sharpe"
    ]
    assert [s for _, s in val] == [1000, 2000, 3000, 4000, 5000]
    np.testing.assert_allclose(
        [v for v, _ in val], [-0.2, -0.1, 0.0, 0.1, 0.2], atol=1e-12
    )
    assert not [
        k for k, _, _ in triples if k.endswith("train_episode_reward_mean")
    ]  # NaN values are not logged
    summary = learning_curve_summary(curves(POINTS)).set_index("Agent")
    assert (
        summary.loc["ppo_mlp", "Points per curve"] == "2–5"
        and summary.loc["sac_mlp", "Curves (seeds x folds)"] == "2"
    )


def test_the_hook_logs_the_learning_curves_as_step_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import mlflow

    from quant_arena.hooks import MlflowReportHooks

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # a Kedro session earlier in this process may have set another store's experiment
    experiment = mlflow.set_experiment("learning_curves_test")
    table = curves(POINTS)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        MlflowReportHooks().after_dataset_saved(
            "walk_forward_learning_curve_report", table, None
        )
    client = mlflow.MlflowClient()
    history = client.get_metric_history(
        run.info.run_id, "fold_1.ppo_mlp.seed_0.train.val_sharpe"
    )
    assert sorted((m.step, round(m.value, 12)) for m in history) == [
        (1000, 0.0),
        (2000, 0.1),
        (3000, 0.2),
        (4000, 0.3),
    ]
    reward = client.get_metric_history(
        run.info.run_id, "fold_0.sac_mlp.seed_0.train.train_reward_mean"
    )
    assert sorted(m.step for m in reward) == [1000 * (i + 1) for i in range(6)]


def test_the_leaderboard_shows_did_it_learn_and_the_learning_curves():
    results = make_walk_forward_results()
    board = build_leaderboard(
        results["walk_forward_oos_returns_table"], periods_per_year=365.0, n_boot=100
    )
    report = pd.DataFrame(
        [
            {
                "strategy": "ppo_mlp",
                "n_seeds": 3,
                "sharpe_mean": 1.2,
                "sharpe_std": 0.3,
                "best_constant": "+1, -1",
                "best_constant_sharpe": 0.4,
                "untrained_sharpe_mean": -0.1,
                "untrained_sharpe_std": 0.2,
                "beats_best_constant": "3/3",
                "beats_untrained": "3/3",
                "constant_share_mean": 0.2,
                "n_constant_seeds": 0,
                "constant_policy": "",
            },
            {
                "strategy": "sac_tcn",
                "n_seeds": 3,
                "sharpe_mean": 0.4,
                "sharpe_std": 0.0,
                "best_constant": "+1, -1",
                "best_constant_sharpe": 0.4,
                "untrained_sharpe_mean": 0.4,
                "untrained_sharpe_std": 0.0,
                "beats_best_constant": "0/3",
                "beats_untrained": "0/3",
                "constant_share_mean": 0.99,
                "n_constant_seeds": 3,
                "constant_policy": "+1 on 99% of bars (3/3 seeds)",
            },
        ]
    )
    table = curves(POINTS)
    md = leaderboard_markdown(board, did_it_learn=report, learning_curves=table)
    section = md.split("## Did it learn?", 1)[1].split("\n## ", 1)[0]
    assert (
        "| sac_tcn |" in section
        and "+1 on 99% of bars (3/3 seeds)" in section
        and "-0.10 ± 0.20" in section
    )
    assert "## Learning curves" in md and "learning_curves_plot.png" in md
    page = leaderboard_html(
        board,
        did_it_learn=report,
        learning_curves=table,
        curves_figure=plot_learning_curves(table),
    )
    assert (
        "<h2>Did it learn?</h2>" in page
        and '<td class="worse">+1 on 99% of bars (3/3 seeds)</td>' in page
    )
    learning = page.split("<h2>Learning curves</h2>", 1)[1].split("<h2>", 1)[0]
    assert learning.count("data:image/png;base64,") == 1
    assert "Did it learn?" not in leaderboard_markdown(
        board
    )  # nothing to show without the report


def test_train_rl_curves_without_fold_or_seed_are_logged_per_agent():
    """train_rl's one split has no fold or seed column: its curves log as <agent>.train.<metric>
    (it used to stop the train_rl run in the MLflow hook with learning_curve_columns)."""
    from quant_arena.reporting.learning import learning_curve_metrics

    table = pd.DataFrame(
        {
            "agent": ["ppo", "ppo", "dqn"],
            "timesteps": [200, 100, 100],
            "val_sharpe": [0.5, 0.25, float("nan")],
        }
    )
    # dqn's only value is NaN (not logged); ppo's points come out in step order
    assert learning_curve_metrics(table) == [
        ("ppo.train.val_sharpe", 0.25, 100),
        ("ppo.train.val_sharpe", 0.5, 200),
    ]


def test_a_pretrained_curve_draws_its_synthetic_phase_apart_and_never_rings_it():
    # 3 pretraining evaluations on the synthetic market (Sharpe 5: not comparable), then 3 on
    # the real validation window, the best of which (0.4 at step 5000) is the one ringed
    table = curves({(0, "ppo_pretrained", 0): 6})
    table["phase"] = ["pretrain"] * 3 + ["finetune"] * 3
    table["val_sharpe"] = [5.0, 5.0, 5.0, 0.1, 0.4, 0.2]
    fig = plot_learning_curves(table)
    ax_r, ax_s = fig.axes
    for ax in (ax_r, ax_s):
        drawn = [line for line in ax.get_lines() if line.get_marker() in ("x", "o")]  # not the zero line
        pre, real = sorted(drawn, key=lambda line: line.get_marker() == "o")
        assert (pre.get_marker(), list(pre.get_xdata())) == ("x", [1000, 2000, 3000])
        assert list(real.get_xdata()) == [4000, 5000, 6000]
        assert len(ax.patches) == 1  # the shaded pretraining span
    rings = [c for c in ax_s.collections if len(c.get_offsets())]
    assert [tuple(c.get_offsets()[0]) for c in rings] == [(5000.0, 0.4)]
    assert "synthetic pretraining" in ax_s.get_title()
    plain = plot_learning_curves(curves({(0, "ppo_mlp", 0): 3}))
    assert all(not ax.patches for ax in plain.axes) and "pretraining" not in plain.axes[1].get_title()
