"""Hydra entry point: ``python src/run.py [overrides]`` trains and tests one model per job.

See README.md; the work is done by :func:`pairmnist.jobs.job.run_job`.
"""

from __future__ import annotations

import warnings

import hydra
from omegaconf import DictConfig

from pairmnist.jobs.naming import register

register()
# conf/hydra/launcher/joblib.yaml deliberately shares its name with the joblib plugin's schema,
# so that `hydra/launcher=joblib` selects it, validated against that schema.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one job (one run per seed of ``tuning_seeds`` when set); returns its final validation accuracy."""
    from pairmnist.jobs.job import run_job  # torch and Lightning load only once the config is valid
    from pairmnist.jobs.tuning import run_seeds

    return run_seeds(cfg, run_job)


if __name__ == "__main__":
    main()
