"""``hydra/sweeper=optuna``: a search with a current Optuna (ask and tell), stored and continued.

Why not hydra-optuna-sweeper: its 1.3.0 pins ``optuna<3`` (2.10, from 2021), whose storage
does not work with SQLAlchemy 2, so a search could not be stored or continued, and it asks
Optuna for ``best_trial`` at the end, which raises when every trial failed.

Each trial is one job of the launcher (the default runs ``n_jobs`` trials at a time) with
the trial's values as overrides; the job's return value (the mean validation accuracy over
``tuning_seeds``, :func:`pairmnist.train.main`) is told to Optuna, a job that failed (None, or
not finite) is told as FAIL and the search goes on. The ranking and best.yaml are the report's
(:mod:`pairmnist.analysis.report`), as for a grid: the sweeper writes nothing of its own.

With ``storage`` (e.g. ``sqlite:///search.db``) the study is kept there: the same command run
again (``resume=true`` and the same ``hydra.sweep.dir``) loads it, does not run its finished
trials again, re-runs the trials an interruption left unfinished (their finished seeds are
resumed, not retrained), and stops when the study holds ``n_trials`` finished trials
(complete or failed; an interrupted trial is marked pruned and does not count).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig

from pairmnist.jobs import signals

log = logging.getLogger(__name__)


def distribution(override: Override) -> Any:
    """The Optuna distribution of a sweep override: ``choice(...)`` -> categorical,
    ``range(a, b[, step])`` -> integers a .. b - 1, ``interval(a, b)`` -> uniform (integers when
    both ends are), ``tag(log, interval(a, b))`` -> log-uniform.

    Raises:
        ValueError: another kind of sweep, naming the key.
    """
    import optuna

    value = override.value()
    if override.is_choice_sweep():
        return optuna.distributions.CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
    if isinstance(value, RangeSweep) and not value.shuffle:
        ints = all(isinstance(v, int) for v in (value.start, value.stop, value.step))
        if ints:
            return optuna.distributions.IntDistribution(value.start, value.stop - 1, step=value.step)
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return optuna.distributions.IntDistribution(value.start, value.end, log=log_scale)
        return optuna.distributions.FloatDistribution(value.start, value.end, log=log_scale)
    raise ValueError(f"{override.get_key_element()}: a search takes choice(), range() or interval(), not {value}")


class OptunaSweeper(Sweeper):
    """Optuna's ask-and-tell loop over Hydra jobs.

    Args:
        sampler: an Optuna sampler's ``_target_`` node (e.g. ``optuna.samplers.TPESampler``),
            instantiated here; a continued study seeds it with ``seed`` + its number of trials.
        direction: ``maximize`` or ``minimize`` the jobs' return value.
        study_name: the study's name in ``storage``.
        storage: an Optuna storage URL (``sqlite:///search.db``), or null (in memory).
        n_trials: finished trials the study holds when the search ends (a continued search
            counts the trials it finds in ``storage``).
        n_jobs: trials launched at a time.
        params: key -> sweep (``choice(...)``, ``interval(...)``, ``tag(log, interval(...))``);
            sweeps given on the command line join them.
    """

    def __init__(
        self,
        sampler: Any,
        direction: str,
        study_name: str,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        params: dict[str, str] | None = None,
    ) -> None:
        self.sampler, self.direction, self.study_name, self.storage = sampler, direction, study_name, storage
        self.n_trials, self.n_jobs, self.params = n_trials, n_jobs, dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna  # here, not at the top: Hydra imports every plugin when any command starts

        parser = OverridesParser.create()
        given = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        overrides = {o.get_key_element(): o for o in parser.parse_overrides(given)}  # the command line wins
        space = {k: distribution(o) for k, o in overrides.items() if o.is_sweep_override()}
        fixed = [f"{k}={o.get_value_element_as_str()}" for k, o in overrides.items() if not o.is_sweep_override()]
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, direction=self.direction, load_if_exists=True
        )
        if self.sampler:  # a seeded sampler continues with another seed, or it would replay the first trials
            seed = self.sampler.get("seed")
            study.sampler = instantiate(self.sampler, **({} if seed is None else {"seed": seed + len(study.trials)}))
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):  # left by an interruption
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)  # not counted; run again below
            study.enqueue_trial(trial.params)
            log.info("trial %d was interrupted: it runs again, its finished seeds resumed", trial.number)
        finished = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
        job_idx = len(study.trials)
        while not signals.received():
            left = self.n_trials - len(study.get_trials(states=finished))
            if left <= 0:
                break
            trials = [study.ask(space) for _ in range(min(self.n_jobs, left))]
            batch = [fixed + [f"{k}={v}" for k, v in t.params.items()] for t in trials]
            returns = self.launcher.launch(batch, initial_job_idx=job_idx)
            job_idx += len(batch)
            if signals.received():  # stopped: these trials stay unfinished, to be run again
                break
            for trial, ret, job in zip(trials, returns, batch, strict=True):
                value = ret._return_value if ret.status.name == "COMPLETED" else None
                if isinstance(value, int | float) and math.isfinite(value):
                    study.tell(trial, value)
                else:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    log.warning("trial %d failed (its job left no value): %s", trial.number, " ".join(job))
        complete = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
        log.info("study %s: %d trials complete of %d", self.study_name, complete, len(study.trials))
