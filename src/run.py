"""Hydra entry point: ``python src/run.py [overrides]`` trains and tests one model per job.

See README.md; the work is done by :func:`pairmnist.jobs.job.run_job`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pairmnist.jobs import signals
from pairmnist.jobs.naming import register

register()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one job (one run per seed of ``tuning_seeds`` when set); returns its final validation accuracy."""
    from pairmnist.jobs.job import run_job  # the training code loads only once the config is valid
    from pairmnist.jobs.tuning import run_seeds

    return run_seeds(cfg, run_job)


if __name__ == "__main__":
    signals.install()  # SIGINT, SIGTERM: the running job stops, no other starts, the report is written
    main()
