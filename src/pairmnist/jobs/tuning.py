"""Several seeds in one job: the objective of a hyperparameter search is a mean over tuning seeds.

A search sweeper (Hydra's Optuna sweeper) scores each trial by the one number its job
returns. With ``tuning_seeds`` set, a job trains one run per seed, each in its own
sub-folder ``seed<N>/`` with its own ``metrics.json`` (so the report groups, ranks and
compares them like the runs of a grid), and returns their mean validation accuracy.
Test accuracy never enters the objective.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, open_dict


def run_seeds(cfg: DictConfig, run_one: Callable[[DictConfig], float | None]) -> float | None:
    """Run ``run_one`` once per seed of ``cfg.tuning_seeds`` (or once, on ``cfg``, when it is unset).

    Args:
        cfg: the job's composed config; ``tuning_seeds`` a list of seeds or null.
        run_one: one run (:func:`pairmnist.jobs.job.run_job`): its final validation accuracy
            (fraction), or None when it failed.

    Returns:
        The mean final validation accuracy (fraction) over the seeds; None when any seed
        failed or diverged, so a search records the trial as failed.
    """
    seeds = cfg.get("tuning_seeds")
    if not seeds:
        return run_one(cfg)
    values = []
    for seed in seeds:
        one = cfg.copy()
        with open_dict(one):
            one.seed = int(seed)
            one.paths.output_dir = str(Path(cfg.paths.output_dir) / f"seed{seed}")
        values.append(run_one(one))
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    return sum(values) / len(values)
