"""Hydra callbacks (``hydra.callbacks`` in ``conf/hydra/default.yaml``)."""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pairmnist.jobs.config import ConfigError, check_preset_sweep, check_writable, validate

log = logging.getLogger(__name__)


def _exit(message: str) -> None:
    """Stop the whole command with ``message`` on stderr and exit status 1.

    Hydra turns exceptions raised by callbacks into warnings and carries on, so a callback
    that must stop the command raises ``SystemExit`` (the full traceback is printed first
    when ``HYDRA_FULL_ERROR=1``).
    """
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        traceback.print_exc()
    raise SystemExit(message)


class ValidateConfig(Callback):
    """Check the config before Hydra creates any folder or starts a job.

    A single run is checked whole. A multirun is checked with its fixed overrides applied,
    and with every value its preset sweeps (:func:`~pairmnist.jobs.config.check_preset_sweep`);
    values swept on the command line are checked by each job as it starts, and a bad one
    fails that job only.

    A bad value stops the command with one line naming the key, the value and what is
    allowed (a :class:`~pairmnist.jobs.config.ConfigError`'s message), and exit status 1.
    """

    def _check(self, config: DictConfig, output_key: str) -> None:
        folder = OmegaConf.select(config, output_key)
        try:
            validate(config)
            if output_key == "hydra.sweep.dir":
                check_preset_sweep(config)
            check_writable(output_key, folder)
        except ConfigError as e:
            _exit(str(e))
        if config.get("resume") and not Path(folder).exists():
            log.warning(
                "resume=true but %s=%s does not exist: nothing to resume, every job trains. "
                "To finish a sweep, give its folder: %s=<that folder>",
                output_key,
                folder,
                output_key,
            )

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")


class WriteReport(Callback):
    """At the end of every multirun, write the report (:mod:`pairmnist.analysis.report`) in the sweep folder.

    Prints the report (for a grid, the validation ranking first). If any job failed or left
    no result, the command then exits with status 1 and names them (their results are still
    summarised).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pairmnist.analysis.report import console_text, write_report  # pandas, matplotlib: only at the end

        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
        try:
            report = write_report(sweep_dir)
        except FileNotFoundError as e:
            _exit(f"report: {e}")
        print(console_text(report), flush=True)
        print(f"report written to {sweep_dir}: " + ", ".join(f.name for f in report.files), flush=True)
        if report.jobs.failed:
            names = ", ".join(report.jobs.failed)
            _exit(f"{len(report.jobs.failed)} job(s) failed or left no result: {names} (see summary.md)")
