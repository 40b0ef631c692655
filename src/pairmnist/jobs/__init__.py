"""Running jobs: config schema and checks, folder names, one job's training and its record
(``pairmnist.record``), resume, signals, its console, the Hydra and Lightning callbacks, and
loading a finished job back (``load``).

May import ``pairmnist.data``, ``pairmnist.models`` and ``pairmnist.record``;
``pairmnist.analysis`` only in the Hydra callback that writes the report when a multirun ends.
"""

import warnings

# conf/hydra/launcher/{joblib,submitit_local}.yaml deliberately share their names with the plugins'
# schemas, so that `hydra/launcher=joblib` selects the project's file, validated against that schema.
# Filtered here, where both src/run.py and the launchers' worker processes (which load the config
# again) pass before Hydra reads the launcher's config.
warnings.filterwarnings(
    "ignore", message=r"\s*'hydra/launcher/(joblib|submitit_local)' is validated against ConfigStore schema"
)
