"""The Hydra side of a command: every job checked before it starts, the folders it prints, the report at
the end of a multirun (``hydra.callbacks`` in ``conf/hydra/default.yaml``), and the job folders' names."""

from __future__ import annotations

import copy
import hashlib
import itertools
import logging
import os
import re
import shlex
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import OverrideParseException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, read_write

from pairmnist.jobs import signals
from pairmnist.record import ERROR_FILE, METRICS_FILE, settings, short_names, write_error

log = logging.getLogger(__name__)
MAX_NAME = 100  # characters of a job folder's name; far below file systems' 255-byte limit


def job_name(model: str, overrides: Iterable[str], seed: int, tuning_seeds: Iterable[int] | None = None) -> str:
    """A multirun job's folder name, a pure function of its command-line overrides (the resolver ``job_name``).

    ``<model>[_<key><value>...]_seed<seed>``: the settings (:func:`pairmnist.record.settings`:
    not the seed, presets or bookkeeping) sorted by key, so the order they were typed in does
    not matter; ``<key>`` is the key's short name (:func:`pairmnist.record.short_names`:
    ``model.optimizer.lr`` -> ``lr``); callbacks set on the command line count too. A job of ``tuning_seeds`` ends in
    ``seeds<first>-<last>`` for consecutive seeds, else every seed. A name that had characters
    replaced (``/``, spaces, braces) gets 6 hex digits of its settings' SHA-256, so that two
    settings never share a folder; one longer than :data:`MAX_NAME` bytes becomes
    ``<model>_<10 hex digits of that SHA-256>_seed<seed>``.
    Resume and de-duplication never rely on it: they match identities (:mod:`pairmnist.record`).
    """
    calls = [str(o).lstrip("+").partition("=")[::2] for o in overrides if str(o).lstrip("+").startswith("callbacks.")]
    kept = sorted([(k, v) for k, v in settings(overrides) if k != "model"] + calls)
    names = short_names(k for k, _ in kept)
    parts = [f"{names[k]}{v}" for k, v in kept]
    seeds = list(tuning_seeds or [])
    label = f"seed{seed}" if not seeds else "seeds" + "+".join(map(str, seeds))
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        label = f"seeds{seeds[0]}-{seeds[-1]}"
    digest = hashlib.sha256(repr(kept).encode()).hexdigest()
    shown = [re.sub(r"[^\w.+\-]+", "-", p).strip("-") for p in parts]
    name = "_".join([str(model), *shown, *([digest[:6]] if shown != parts else []), label])
    return name if len(name.encode()) <= MAX_NAME else f"{model}_{digest[:10]}_{label}"


def register() -> None:
    """Register the resolver ``${job_name:model,overrides,seed,tuning_seeds}`` (idempotent)."""
    if not OmegaConf.has_resolver("job_name"):
        OmegaConf.register_new_resolver("job_name", job_name)


def _exit(message: str, status: int = 1) -> NoReturn:
    """Stop the whole command with ``message`` on stderr and exit ``status``.

    Hydra turns exceptions raised by callbacks into warnings and carries on, so a callback
    that must stop the command raises ``SystemExit`` (the full traceback is printed first
    when ``HYDRA_FULL_ERROR=1``).
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exc()
    sys.stdout.flush()  # what was printed comes first, also when both streams go to one file
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(status)


def finish_command(sweep_dir: str | Path, argv: list[str] | None = None) -> str:
    """The command that finishes a sweep: this one again, with ``resume=true hydra.sweep.dir=<sweep_dir>``.

    Rebuilt from ``argv`` (default ``sys.argv``) with any earlier ``resume=`` or
    ``hydra.sweep.dir=`` left out. The folder is quoted for Hydra's override grammar where it
    needs it (spaces, parentheses, commas, braces, ``=``, quotes), and every word for the shell,
    so that pasted into bash in the same folder it runs as typed. The interpreter is ``python``
    when that name finds the one running, else its full path.
    """
    argv = sys.argv if argv is None else argv
    python = "python" if shutil.which("python") == sys.executable else sys.executable
    kept = [a for a in argv[1:] if a.lstrip("+").partition("=")[0] not in ("resume", "hydra.sweep.dir")]
    return shlex.join([python, argv[0], *kept, "resume=true", hydra_override("hydra.sweep.dir", str(sweep_dir))])


def hydra_override(key: str, value: str) -> str:
    """``key=value`` that Hydra's override parser reads back as the string ``value``: bare where it can
    be, else single-quoted, with each quote and the backslashes before a quote (or the end) escaped."""
    try:
        if OverridesParser.create().parse_overrides([f"{key}={value}"])[0].value() == value:
            return f"{key}={value}"
    except OverrideParseException:  # Hydra's grammar refuses it bare
        pass
    quoted = re.sub(r"(\\*)('|$)", lambda m: 2 * m[1] + ("\\'" if m[2] else ""), value)
    return f"{key}='{quoted}'"


def check_writable(key: str, folder: str | Path) -> None:
    """Stop the command unless ``folder`` can be created (or exists) and written; creates nothing."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        with tempfile.TemporaryFile(dir=existing) as f:  # the size of a job's config: a full disk fails here
            f.write(bytes(8192))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        _exit(f"{key}={folder}: not a writable folder ({e})")


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The overrides of the jobs to check before a multirun: the preset's sweep (``hydra.sweeper.params``)
    and the command line's, which replaces the preset's for the same key, as Hydra's sweepers take
    them, in every combination (a search's ``interval(a, b)`` by its two ends); the seed only seeds,
    so each of its values is checked once, with the first combination."""
    params = [f"{k}={v}" for k, v in (OmegaConf.select(config, "hydra.sweeper.params") or {}).items()]
    options = {}
    for override in OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task)):
        key, value = override.get_key_element(), override.value()
        if isinstance(value, IntervalSweep):
            values = [value.start, value.end]
        elif override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        options[key] = [f"{key}={v}" for v in values]
    seeds = options.pop("seed", [])
    jobs = [list(job) for job in itertools.product(*options.values())]
    return [job + seeds[:1] for job in jobs] + [jobs[0] + [seed] for seed in seeds[1:]]


def job_configs(config: DictConfig) -> Iterator[DictConfig]:
    """The config of each job of :func:`job_overrides`, as the launcher will compose it, made quickly.

    Hydra composes the config of each choice of config groups (``model=twin``, ``+without=...``,
    the seed) once; a job's ``key.sub=value`` overrides are then applied to a copy of it, as
    Hydra itself applies them after composing (its ``_apply_overrides_to_config``, same errors).
    """
    loader, parser, composed = GlobalHydra.instance().hydra.config_loader, OverridesParser.create(), {}
    for overrides in job_overrides(config):
        keys = [o.lstrip("+~").partition("=")[0] for o in overrides]
        groups = tuple(o for o, k in zip(overrides, keys, strict=True) if "." not in k or "/" in k or "@" in k)
        if groups not in composed:
            composed[groups] = loader.load_sweep_config(config, list(groups))
        cfg = copy.deepcopy(composed[groups])
        ConfigLoaderImpl._apply_overrides_to_config(
            parser.parse_overrides([o for o in overrides if o not in groups]), cfg
        )
        yield cfg


class CheckJobs(Callback):
    """Before Hydra creates any folder or starts a job, check every job the command will run.

    Each job's config is composed from its overrides (every combination of a multirun's
    sweeps: :func:`job_overrides`, :func:`job_configs`) and checked by :func:`pairmnist.train.check`: the job's own
    instantiation of its datamodule, LightningModule and Trainer, without data or training,
    so the verdict is the job's. The first job that fails stops the command with its one line
    (:func:`pairmnist.train.explain`; for a preset's sweep, how to replace a swept value) and
    exit status 1. The output and data folders must be writable.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        check_writable("hydra.run.dir", config.hydra.run.dir)
        self._check([config], config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        n_jobs = OmegaConf.select(config, "hydra.launcher.n_jobs", default=None)
        parallel = config.hydra.launcher.get("_target_", "").endswith("ParallelLauncher")
        if parallel and not (n_jobs is None or (type(n_jobs) is int and n_jobs >= 1)):  # else Hydra wraps it in 3 lines
            _exit(f"hydra.launcher.n_jobs={n_jobs}: must be null (one job per core) or an integer >= 1")
        if not config.hydra.sweeper.get("_target_", "").startswith("hydra._internal"):  # Hydra refuses its own
            instantiate(config.hydra.sweeper)  # its own settings' checks (one line each) come first: they are cheap
        check_writable("hydra.sweep.dir", config.hydra.sweep.dir)
        self._check(job_configs(config), config.hydra.sweep.dir, config)
        if config.get("resume") and not Path(config.hydra.sweep.dir).exists():
            log.warning(
                "resume=true but hydra.sweep.dir=%s does not exist: nothing to resume, every job trains",
                config.hydra.sweep.dir,
            )

    def _check(self, jobs: Iterable[DictConfig], folder: str, sweep: DictConfig | None = None) -> None:
        from pairmnist.train import check, explain, launch_path  # torch and Lightning: only once a job is checked

        previous, cfg = HydraConfig.instance().cfg, sweep
        try:
            for cfg in jobs:
                with read_write(cfg.hydra.runtime):  # the job's callbacks and logger write there (nothing here)
                    cfg.hydra.runtime.output_dir = str(Path(folder).absolute())
                HydraConfig.instance().set_config(cfg)
                check(cfg)
        except Exception as e:
            choices = sweep.hydra.runtime.choices if sweep is not None else {}
            preset = " ".join(f"{g}={choices[g]}" for g in ("hparams_search", "experiment") if choices.get(g))
            hint = f" (swept by {preset}; a value set on the command line replaces the preset's)" if preset else ""
            _exit(explain(e, cfg) + hint)
        finally:
            HydraConfig.instance().cfg = previous
        check_writable("paths.data_dir", launch_path(cfg, cfg.paths.data_dir))


class ShowFolders(Callback):
    """Print where a command's results go, each on a line of its own (kept when output goes to a file).

    A single run prints ``run folder: <absolute path>`` when it starts and ``metrics:
    <path of metrics.json>`` when it has written it; a multirun prints ``sweep folder:
    <absolute path>`` when it starts (its report ends it: :class:`WriteReport`).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        print(f"run folder: {Path(config.hydra.run.dir).absolute()}", flush=True)

    def on_run_end(self, config: DictConfig, job_return: JobReturn | None = None, **kwargs: Any) -> None:
        if job_return is not None and job_return.status == JobStatus.COMPLETED:
            print(f"metrics: {Path(config.hydra.runtime.output_dir) / METRICS_FILE}", flush=True)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        print(f"sweep folder: {Path(config.hydra.sweep.dir).absolute()}", flush=True)


class WriteReport(Callback):
    """At the end of every multirun, write the report (:mod:`pairmnist.analysis.report`) in the sweep folder.

    Prints the report (for a grid, the validation ranking first); when a report file cannot be
    written (a full disk), the report is printed all the same. The command then exits non-zero
    when anything is missing, with one line per problem on stderr, in this order: the jobs that
    failed or left no result (their results are still summarised), the report file that could
    not be written (any failure of the report, which Hydra alone would only warn about), and,
    when jobs are missing or the command received SIGINT or SIGTERM, the command that finishes
    the sweep (:func:`finish_command`) as the last line. Exit status: 128 + the signal's number
    after a signal (130, 143), else 1.

    A job that failed outside the job's own failure handling (its process died, or Hydra could not
    run it) reaches :meth:`on_job_end` with status FAILED: its ``error.txt`` is written, and its
    line kept for the end, also when even ``error.txt`` cannot be written.
    """

    def __init__(self) -> None:
        self.failed: dict[str, str] = {}  # job folder (relative to the sweep folder) -> its one line

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED:
            return
        out, error = Path(config.hydra.runtime.output_dir), job_return._return_value
        message = f"{type(error).__name__}: {' '.join(str(error).split())}"
        try:
            write_error(out, message, "".join(traceback.format_exception(error)))
        except OSError as e:
            message += f" ({ERROR_FILE} not written: {e.strerror or e})"
        name = os.path.relpath(out, Path(config.hydra.sweep.dir).absolute())
        self.failed[Path(name).as_posix()] = message
        log.error("job %s failed: %s", name, message)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # pandas and matplotlib only once the sweep is done
        from pairmnist.analysis.report import ReportError, analyse, collect, console_text, write_report

        sweep_dir = Path(config.hydra.sweep.dir).absolute()
        problems = []
        try:
            report = write_report(sweep_dir)
        except Exception as e:  # whatever it is, the command must not end as if all went well
            if isinstance(e, ReportError | FileNotFoundError):  # names the file, or says there is no result
                problem = str(e)
            else:
                problem = f"could not write the report in {sweep_dir}: {type(e).__name__}: {e}"
            problems.append(f"report: {' '.join(problem.split())}")
            jobs = collect(sweep_dir)
            if isinstance(e, ReportError):  # a file could not be written: the report is printed all the same
                print(console_text(analyse(jobs, sweep_dir.name)), flush=True)
        else:
            print(console_text(report), flush=True)
            print(f"report written to {sweep_dir}: " + ", ".join(f.name for f in report.files), flush=True)
            jobs = report.jobs
        failed = {**jobs.failed, **self.failed}
        if failed:
            where = "" if problems else " (see summary.md)"
            problems.insert(0, f"{len(failed)} job(s) failed or left no result: {', '.join(failed)}{where}")
        received = signals.received()
        if failed or received:
            stopped = f"{received.name} received; " if received else ""
            problems += [
                f"{stopped}to finish the sweep, run from {config.hydra.runtime.cwd}:",
                finish_command(sweep_dir),
            ]
        if problems:
            _exit("\n".join(problems), signals.exit_status(received) if received else 1)
