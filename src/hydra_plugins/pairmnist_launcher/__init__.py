"""The default multirun launcher: the jobs run in parallel, one forked process per job.

Why not hydra-joblib-launcher (still ``hydra/launcher=joblib``): a SIGTERM to its parent
leaves loky's workers running, and one worker killed (by the out-of-memory killer, say)
breaks the executor and ends the whole sweep without a report. Here each job is a child
process of its own, so:

- a child that dies without a result fails its job only: ``error.txt`` names the signal or
  exit code, the others go on, the report counts it as failed (the sweep exits 1);
- SIGINT and SIGTERM received by the parent are passed on to the running children (which
  stop their job as a single run does, :mod:`pairmnist.jobs.signals`); jobs started after the
  signal stop before training; the parent then writes the report as after a serial sweep.
  Children get a process group of their own, so Ctrl-C reaches them once, through the parent.

Each child is forked from the parent after it has imported torch and Lightning (the parent
runs no torch operation, so no thread pool is copied), so a job starts in milliseconds. The
number of CPU threads of each job is the job's ``threads`` key (conf/config.yaml); when it is
null, the cores divided among the jobs that run side by side (1 each with the default n_jobs).
Linux and macOS only (fork).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)
# The config check asks torch.cuda.is_available() in this (parent) process; through NVML it leaves
# CUDA uninitialised, so forked jobs can still use the GPU (PyTorch's documented switch for forks).
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")


SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG), so a
    command killed outright (SIGKILL) leaves no job training; elsewhere a no-op."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


class ParallelLauncher(Launcher):
    """Runs a multirun's jobs in at most ``n_jobs`` forked processes at a time.

    Args:
        n_jobs: jobs at a time; null: :func:`cores`. 1 runs the jobs one after another.
    """

    def __init__(self, n_jobs: int | None = None) -> None:
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
            raise ValueError(f"hydra.launcher.n_jobs={n_jobs!r}: use a whole number >= 1, or null (one per core)")
        self.n_jobs = n_jobs or cores()
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the jobs; returns one JobReturn per job, in the order given.

        A job whose process died without a result returns status COMPLETED with value None,
        as a failed job of :func:`pairmnist.train.run` does, so sweepers go on.
        """
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs, %d at a time", len(job_overrides), self.n_jobs)
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        import pairmnist.train  # noqa: F401  torch and Lightning once, shared by every forked child

        context = multiprocessing.get_context("fork")
        side_by_side = min(self.n_jobs, len(job_overrides))  # the jobs that share the cores
        pending = list(enumerate(job_overrides, initial_job_idx))
        running: dict[Any, tuple[int, DictConfig, multiprocessing.Process]] = {}
        results: dict[int, JobReturn] = {}

        parent = os.getpid()

        def forward(signum: int, frame: Any) -> None:
            if os.getpid() != parent:  # a child in the instant before it installs its own handlers
                return
            for _, _, proc in running.values():
                try:
                    os.kill(proc.pid, signum)
                except ProcessLookupError:
                    pass
            if callable(previous[signum]):
                previous[signum](signum, frame)

        previous = {s: signal.signal(s, forward) for s in SIGNALS}
        try:
            while pending or running:
                while pending and len(running) < self.n_jobs:
                    idx, overrides = pending.pop(0)
                    cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                    with open_dict(cfg):
                        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
                        cfg.hydra.job.num = idx
                    receive, send = context.Pipe(duplex=False)
                    proc = context.Process(target=self._child, args=(cfg, send, previous, side_by_side), daemon=False)
                    proc.start()
                    running[receive] = (idx, cfg, proc)
                    send.close()
                for receive in wait(list(running)):
                    idx, cfg, proc = running.pop(receive)
                    try:
                        results[idx] = receive.recv()
                    except EOFError:  # the child ended without sending its result
                        proc.join()
                        results[idx] = self._died(cfg, proc.exitcode)
                    receive.close()
                    proc.join()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return [results[i] for i in sorted(results)]

    def _child(self, cfg: DictConfig, send: Any, handlers: dict, side_by_side: int) -> None:
        os.setpgid(0, 0)  # the terminal's Ctrl-C goes to the parent only, which passes it on once
        _stop_with_parent()
        for s, handler in handlers.items():
            signal.signal(s, handler)
        if cfg.get("threads") is None:  # the cores shared out among the jobs running side by side
            with open_dict(cfg):
                cfg.threads = max(1, cores() // side_by_side)
        HydraConfig.instance().set_config(cfg)
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        if ret.status == JobStatus.FAILED:  # keep only the message: an exception may not pickle
            ret._return_value = RuntimeError(f"{type(ret._return_value).__name__}: {ret._return_value}")
        send.send(ret)
        send.close()

    def _died(self, cfg: DictConfig, exitcode: int | None) -> JobReturn:
        """Record a job whose process ended without a result: error.txt, one log line, value None."""
        HydraConfig.instance().set_config(cfg)
        out = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
        killed = exitcode is not None and exitcode < 0
        how = f"killed by {signal.Signals(-exitcode).name}" if killed else f"exit code {exitcode}"
        hint = "; out of memory?" if exitcode == -signal.SIGKILL else ""
        message = f"WorkerDied: the job's process ended ({how}) before it wrote a result{hint}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "error.txt").write_text(message + "\n")
        log.error("job %s failed: %s", out.name, message)
        overrides = list(cfg.hydra.overrides.task)
        ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=OmegaConf.create(), working_dir=str(out))
        ret.status, ret.return_value = JobStatus.COMPLETED, None
        return ret
