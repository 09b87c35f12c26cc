"""The results dashboard (Streamlit): the leaderboard, equity curves, the fold heat map, learning
curves, drift status, champion / challenger history and the paper account of one project folder.

Start it with ``python -m quant_arena.dashboard`` (``--project``, ``--env``, ``--port``; see
``__main__.py``) or ``streamlit run src/quant_arena/dashboard/app.py -- --project .``.
:mod:`~quant_arena.dashboard.results` holds everything it shows, as plain tables; ``app.py`` only
lays them out.
"""

from quant_arena.dashboard.results import (
    LEADERBOARD_COLUMNS,
    SECTIONS,
    ProjectResults,
    ResultsError,
    agents_of,
    champion_view,
    drift_view,
    equity_view,
    fold_heatmap_view,
    leaderboard_view,
    learning_curve_view,
    paper_view,
    project_catalog,
    retrain_decisions,
)

__all__ = [
    "LEADERBOARD_COLUMNS",
    "SECTIONS",
    "ProjectResults",
    "ResultsError",
    "agents_of",
    "champion_view",
    "drift_view",
    "equity_view",
    "fold_heatmap_view",
    "leaderboard_view",
    "learning_curve_view",
    "paper_view",
    "project_catalog",
    "retrain_decisions",
]
