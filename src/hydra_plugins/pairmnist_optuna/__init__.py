"""``hydra/sweeper=optuna``: a search with a current Optuna (ask and tell), kept and continued.

Why not hydra-optuna-sweeper: its 1.3.0 pins ``optuna<3`` (2.10, from 2021), whose storage
does not work with SQLAlchemy 2, and it asks Optuna for ``best_trial`` at the end, which raises
when every trial failed.

Each trial is one job of the launcher (``n_jobs`` trials at a time) with the trial's values as
overrides; the job's return value is told to Optuna, and a job that failed (None, or not finite)
is told as FAIL while the search goes on. The sweeper writes nothing but its study: any ranking
is the app's business.

The study is kept in ``storage`` (an Optuna URL such as ``sqlite:///search.db``), or, when it is
null, in the sweep folder (``optuna_study.log``, Optuna's journal file). Run again with
``resume=true`` and the same ``hydra.sweep.dir``, the command continues the study: finished trials
are not run again, and a trial that failed or was cut short (a signal, a killed worker) runs again
in its own folder, so its finished runs are resumed by the job, not retrained.

Trial *k*'s job gets ``hydra.job.num`` = *k*; ``hydra.sweep.subdir`` must use it, so that two
trials that draw the same values never share a folder. A retried trial keeps its first number.
Every setting is checked before the first trial; a bad one stops the command with one line.
"""

from __future__ import annotations

import logging
import math
import signal
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.core.utils import JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)
JOURNAL = "optuna_study.log"  # the study of a search without storage, in its sweep folder


def _stop(message: str) -> SystemExit:
    """A bad setting: the command ends with this one line (exit status 1), before any trial."""
    return SystemExit(" ".join(message.split()))


def distribution(override: Override, current: Any = None) -> Any:
    """The Optuna distribution of a sweep override.

    ``choice(...)`` -> categorical; ``range(a, b[, step])`` -> integers a .. b - 1;
    ``interval(a, b)`` -> floats in [a, b]; ``int(interval(a, b))`` -> integers in [a, b] (Hydra's
    cast); ``tag(log, ...)`` -> on a log scale.

    Args:
        override: the parsed ``key=<sweep>``.
        current: the key's value in the config: an integer refuses a float interval.

    Raises:
        SystemExit: one line naming the key: another kind of sweep, an interval of floats over an
            integer key, or bounds Optuna refuses (low > high, a log scale from 0).
    """
    import optuna

    key, value = override.get_key_element(), override.value()
    try:
        if override.is_choice_sweep():
            return optuna.distributions.CategoricalDistribution(list(override.sweep_iterator(Transformer.encode)))
        if isinstance(value, RangeSweep) and not value.shuffle and isinstance(value.step, int):
            return optuna.distributions.IntDistribution(value.start, value.stop - 1, step=value.step)
        if isinstance(value, IntervalSweep):
            ints = isinstance(value.start, int) and isinstance(value.end, int)
            if isinstance(current, int) and not isinstance(current, bool) and not ints:
                raise ValueError(f"gives floats, and {key} is an integer: write int(interval(...)) for integers")
            kind = optuna.distributions.IntDistribution if ints else optuna.distributions.FloatDistribution
            return kind(value.start, value.end, log="log" in value.tags)
    except ValueError as e:
        raise _stop(f"{override.input_line}: {e}") from None
    raise _stop(f"{override.input_line}: a search takes choice(), range() or interval()")


class OptunaSweeper(Sweeper):
    """Optuna's ask-and-tell loop over Hydra jobs.

    Args:
        sampler: an Optuna sampler's ``_target_`` node (e.g. ``optuna.samplers.TPESampler``),
            instantiated here; a continued study seeds it with ``seed`` + its number of trials.
        direction: ``maximize`` or ``minimize`` the jobs' return value.
        study_name: the study's name in ``storage``; a stored study of this name must have the
            same direction and search space.
        storage: an Optuna storage URL (``sqlite:///search.db``), or null: the sweep folder.
        n_trials: trials the study holds, finished, when the search ends (complete or failed,
            those found in ``storage`` included; a trial run again counts once).
        n_jobs: trials launched at a time.
        params: key -> sweep (``choice(...)``, ``interval(...)``, ``tag(log, interval(...))``);
            sweeps given on the command line join them.

    Raises:
        SystemExit: a setting that is not allowed, in one line naming its key.
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
        for key, value in {"n_trials": n_trials, "n_jobs": n_jobs}.items():
            if type(value) is not int or value < 1:
                raise _stop(f"hydra.sweeper.{key}={value}: must be an integer >= 1")
        if direction not in ("maximize", "minimize"):
            raise _stop(f"hydra.sweeper.direction={direction}: must be maximize or minimize")
        if not study_name:
            raise _stop("hydra.sweeper.study_name: must be a name")
        self.sampler, self.direction, self.study_name, self.storage = sampler, direction, str(study_name), storage
        self.n_trials, self.n_jobs, self.params = n_trials, n_jobs, dict(params or {})

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))
        if "hydra.job.num" not in subdir:
            raise _stop(f"hydra.sweep.subdir={subdir}: must hold ${{hydra.job.num}}, or two trials may share a folder")
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        import optuna  # here, not at the top: Hydra imports every plugin when any command starts

        state = optuna.trial.TrialState
        space, fixed = self.space(arguments)
        study = self.study(space)
        if self.sampler:  # a seeded sampler continues with another seed, or it would replay the first trials
            seed = self.sampler.get("seed")
            study.sampler = instantiate(self.sampler, **({} if seed is None else {"seed": seed + len(study.trials)}))
        again = (state.RUNNING, state.PRUNED, *((state.FAIL,) if self.config.get("resume") else ()))
        for trial in newest(study.trials):
            if trial.state in again:  # cut short, or failed: it runs again in its folder
                if trial.state == state.RUNNING:
                    study.tell(trial.number, state=state.PRUNED)
                study.enqueue_trial(trial.params, user_attrs={"slot": slot(trial)})
                log.info("trial %d runs again (%s before): its finished runs are kept", slot(trial), trial.state.name)

        stopped: list[int] = []

        def note(signum: int, frame: Any) -> None:  # no new trial after SIGINT or SIGTERM; the app hears it too
            stopped.append(signum)
            if callable(previous[signum]):
                previous[signum](signum, frame)

        previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopped:
                trials = newest(study.trials)
                waiting = sum(t.state == state.WAITING for t in trials)
                left = self.n_trials - sum(t.state in (state.COMPLETE, state.FAIL) for t in trials) - waiting
                asked = [study.ask(space) for _ in range(min(self.n_jobs, waiting + max(0, left)))]
                if not asked:
                    break
                for trial, ret in zip(asked, self.launch(asked, fixed), strict=True):
                    value = ret.return_value if ret.status == JobStatus.COMPLETED else None
                    if isinstance(value, int | float) and math.isfinite(value):
                        study.tell(trial, value)
                    elif not stopped:  # else left RUNNING: cut short by the signal, it runs again when resumed
                        study.tell(trial, state=state.FAIL)
                        log.warning("trial %d failed (its job left no value): %s", slot(trial), trial.params)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        complete = sum(t.state == state.COMPLETE for t in newest(study.trials))
        log.info("study %s: %d trials complete of %d", self.study_name, complete, len(newest(study.trials)))

    def space(self, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
        """The search space (key -> Optuna distribution) of ``params`` and the command's sweeps, and the
        command's other overrides, which every trial gets; the command line wins over ``params``.

        Raises:
            SystemExit: a sweep a search cannot take (:func:`distribution`).
        """
        given = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        overrides = {o.get_key_element(): o for o in OverridesParser.create().parse_overrides(given)}
        space = {
            key: distribution(o, OmegaConf.select(self.config, o.key_or_group, throw_on_resolution_failure=False))
            for key, o in overrides.items()
            if o.is_sweep_override()
        }
        return space, [o.input_line for o in overrides.values() if not o.is_sweep_override()]

    def study(self, space: dict[str, Any]) -> Any:
        """The study, created or loaded from the storage (the sweep folder's journal when there is none).

        Raises:
            SystemExit: a storage Optuna cannot open, or a stored study of another direction or space.
        """
        import optuna

        storage, where = self.storage, self.storage
        if not storage:
            where = Path(str(self.config.hydra.sweep.dir)) / JOURNAL
            where.parent.mkdir(parents=True, exist_ok=True)
            storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(where)))
        try:
            study = optuna.create_study(
                study_name=self.study_name, storage=storage, direction=self.direction, load_if_exists=True
            )
        except Exception as e:
            raise _stop(f"hydra.sweeper.storage={where}: {type(e).__name__}: {e}") from None
        new = "; name another hydra.sweeper.study_name for a new search"
        stored = f"the stored study {self.study_name} ({where})"
        if study.direction.name.lower() != self.direction:
            raise _stop(f"hydra.sweeper.direction={self.direction}: {stored} is to {study.direction.name.lower()}{new}")
        searched = next((t.distributions for t in reversed(study.trials) if t.distributions), space)
        changed = sorted(k for k in searched.keys() | space.keys() if searched.get(k) != space.get(k))
        if changed:
            was, now = (s.get(changed[0], "nothing") for s in (searched, space))
            raise _stop(f"{changed[0]}: {stored} searched {was}; this command: {now}{new}")
        return study

    def launch(self, trials: list[Any], fixed: list[str]) -> list[Any]:
        """Launch the trials' jobs, trial *k* as job number *k* (one launch per run of consecutive numbers)."""
        jobs = [(slot(t), fixed + [f"{k}={v}" for k, v in t.params.items()]) for t in trials]
        returns, start = [], 0
        for end in range(1, len(jobs) + 1):
            if end == len(jobs) or jobs[end][0] != jobs[end - 1][0] + 1:
                returns += self.launcher.launch([o for _, o in jobs[start:end]], initial_job_idx=jobs[start][0])
                start = end
        return returns


def slot(trial: Any) -> int:
    """A trial's number, or for a trial run again, the number of the trial it repeats (its folder's)."""
    return trial.user_attrs.get("slot", trial.number)


def newest(trials: list[Any]) -> list[Any]:
    """The newest trial of each :func:`slot`."""
    return list({slot(t): t for t in trials}.values())
