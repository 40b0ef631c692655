"""The Hydra side of a command (config check, folder names, report at the end), signals, and
loading a finished job back (``load``). The job itself is :mod:`pairmnist.train`."""

import warnings

# conf/hydra/launcher/{joblib,submitit_local}.yaml share their names with the plugins' schemas on
# purpose (`hydra/launcher=joblib` selects the project's file, validated against that schema).
warnings.filterwarnings(
    "ignore", message=r"\s*'hydra/launcher/(joblib|submitit_local)' is validated against ConfigStore schema"
)
