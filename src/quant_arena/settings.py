"""Project settings. There is no need to edit this file unless you want to change values
from the Kedro defaults. For further information, including these default values, see
https://docs.kedro.org/en/stable/configure/configuration_basics/#configuration"""

# Instantiated project hooks. Hooks are executed in a Last-In-First-Out (LIFO) order.
from quant_arena.hooks import (  # noqa: E402
    AlertHooks,
    CatalogSchemaHooks,
    MlflowChildRunsHooks,
    MlflowReportHooks,
    ParameterValidationHooks,
    RequiredInputsHooks,
    RunEnvironmentHooks,
)

# after_context_created: the run environment is recorded (walk_forward/train_rl are built from it).
# before_pipeline_run: parameters are validated first, then the inputs other pipelines write.
# CatalogSchemaHooks: the bars and feature tables checked where they are loaded and saved.
# MlflowChildRunsHooks: after a walk_forward run, a child run per fold x strategy x seed.
# AlertHooks: a retrain/monitor run's alerts, and a failure alert when such a run fails.
HOOKS = (
    RunEnvironmentHooks(),
    RequiredInputsHooks(),
    ParameterValidationHooks(),
    CatalogSchemaHooks(),
    MlflowReportHooks(),
    MlflowChildRunsHooks(),
    AlertHooks(),
)

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

# Class that manages the KedroSession.
# from kedro.framework.session import KedroSession
# SESSION_CLASS = KedroSession

# Class that manages storing KedroSession data.
# from kedro.framework.session.store import BaseSessionStore
# SESSION_STORE_CLASS = BaseSessionStore
# Keyword arguments to pass to the `SESSION_STORE_CLASS` constructor.
# SESSION_STORE_ARGS = {
#     "path": "./sessions"
# }

# Directory that holds configuration.
# CONF_SOURCE = "conf"

# Class that manages how configuration is loaded.
# from kedro.config import OmegaConfigLoader

# CONFIG_LOADER_CLASS = OmegaConfigLoader

# Keyword arguments to pass to the `CONFIG_LOADER_CLASS` constructor.
from omegaconf.resolvers import oc  # noqa: E402

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # ${oc.env:VAR,default} everywhere (MLflow tracking URI, tuning storage URL), not only in
    # credentials; secrets still belong in conf/local/credentials.yml or the environment.
    "custom_resolvers": {"oc.env": oc.env},
    # an environment's parameters files hold only what differs from conf/base (conf/thorough
    # changes walk_forward's agents and budget and keeps everything else): merge key by key
    "merge_strategy": {"parameters": "soft"},
    # "config_patterns": {
    #     "spark" : ["spark*/"],
    #     "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    # }
}

# Class that manages Kedro's library components.
# from kedro.framework.context import KedroContext
# CONTEXT_CLASS = KedroContext

# Class that manages the Data Catalog.
# from kedro.io import DataCatalog
# DATA_CATALOG_CLASS = DataCatalog
