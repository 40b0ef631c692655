"""Hydra entry point: ``python src/run.py [overrides]`` trains and tests one model per job.

See README.md; what a job does, top to bottom, is :func:`pairmnist.train.main`.
"""

from __future__ import annotations

import logging
import os
import sys

import hydra
from omegaconf import DictConfig

from pairmnist.jobs import signals
from pairmnist.jobs.hydra_callbacks import register

register()  # the job folders' names (conf/hydra/default.yaml)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run one job; returns its final validation accuracy (the mean over ``tuning_seeds`` when set)."""
    from pairmnist.train import main as run_job  # torch and Lightning load only when a job runs

    return run_job(cfg)


if __name__ == "__main__":
    sys.path.insert(1, os.getcwd())  # a module in the folder the command runs from, as `python -m` has it (after src/)
    signals.install()  # SIGINT, SIGTERM: the running job stops, no other starts, the report is written
    logging.raiseExceptions = False  # a log file that cannot be written (a full disk) is no traceback per line
    main()
