"""The Hydra side of a command: the config check before it starts, the folders it prints, the report at
the end of a multirun (``hydra.callbacks`` in ``conf/hydra/default.yaml``), and the job folders' names."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import OverrideParseException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pairmnist.jobs import signals
from pairmnist.jobs.config import ConfigError, check, check_preset_sweep, check_writable
from pairmnist.record import ERROR_FILE, METRICS_FILE, settings, write_error

log = logging.getLogger(__name__)
MAX_NAME = 100  # characters of a job folder's name; far below file systems' 255-byte limit


def job_name(model: str, overrides: Iterable[str], seed: int, tuning_seeds: Iterable[int] | None = None) -> str:
    """A multirun job's folder name, a pure function of its command-line overrides (the resolver ``job_name``).

    ``<model>[_<key><value>...]_seed<seed>``: the settings (:func:`pairmnist.record.settings`:
    not the seed, presets or bookkeeping) sorted by key, so the order they were typed in does
    not matter; ``<key>`` is the key's last part (``model.lr`` -> ``lr``) unless two keys end
    alike; callbacks set on the command line count too. A job of ``tuning_seeds`` ends in
    ``seeds<first>-<last>`` for consecutive seeds, else every seed. A name that had characters
    replaced (``/``, spaces, braces) gets 6 hex digits of its settings' SHA-256, so that two
    settings never share a folder; one longer than :data:`MAX_NAME` bytes becomes
    ``<model>_<10 hex digits of that SHA-256>_seed<seed>``.
    Resume and de-duplication never rely on it: they match identities (:mod:`pairmnist.record`).
    """
    calls = [str(o).lstrip("+").partition("=")[::2] for o in overrides if str(o).lstrip("+").startswith("callbacks.")]
    kept = sorted([(k, v) for k, v in settings(overrides) if k != "model"] + calls)
    last = [k.split(".")[-1] for k, _ in kept]
    parts = [f"{short if last.count(short) == 1 else k}{v}" for (k, v), short in zip(kept, last, strict=True)]
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


class ValidateConfig(Callback):
    """Check the config (:func:`~pairmnist.jobs.config.check`) before Hydra creates any folder or starts a job.

    A multirun is checked with its fixed overrides applied, and with every value its preset
    sweeps (:func:`~pairmnist.jobs.config.check_preset_sweep`); values swept on the command line
    are checked by each job as it starts, and a bad one fails that job only. A bad key or value
    stops the command with its one line and exit status 1.
    """

    def _check(self, config: DictConfig, output_key: str) -> None:
        folder = OmegaConf.select(config, output_key)
        try:
            check(config)
            if output_key == "hydra.sweep.dir":
                check_preset_sweep(config)
            check_writable(output_key, folder)
        except ConfigError as e:
            _exit(str(e))
        except Exception as e:  # a value the checks did not foresee: still one line, before anything starts
            _exit(f"{type(e).__name__}: {' '.join(str(e).split())}")
        if config.get("resume") and not Path(folder).exists():
            log.warning("resume=true but %s=%s does not exist: nothing to resume, every job trains", output_key, folder)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        n_jobs = OmegaConf.select(config, "hydra.launcher.n_jobs", default=None)
        parallel = config.hydra.launcher.get("_target_", "").endswith("ParallelLauncher")
        if parallel and not (n_jobs is None or (type(n_jobs) is int and n_jobs >= 1)):  # else Hydra wraps it in 3 lines
            _exit(f"hydra.launcher.n_jobs={n_jobs}: must be null (one job per core) or an integer >= 1")
        instantiate(config.hydra.sweeper)  # its own settings' checks (one line each) come first: they are cheap
        self._check(config, "hydra.sweep.dir")


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
