"""The default multirun launcher: the jobs run in parallel, one forked process per job.

Why not hydra-joblib-launcher (still ``hydra/launcher=joblib``): a SIGTERM to its parent
leaves loky's workers running, and one worker killed (by the out-of-memory killer, say)
breaks the executor and ends the whole sweep without a report. Here each job is a child
process of its own, so:

- a job that fails, even where Hydra could not run it (a full disk) or its process died
  without a result (killed), fails alone: the other jobs go on, the callbacks' ``on_job_end``
  hears of it with status FAILED and the reason (in this process when the job's own could not
  tell them), and the sweeper gets status COMPLETED with value None, as from a job that caught
  its own failure (Hydra's BasicSweeper would end the sweep, report and all, on a FAILED one);
- SIGINT and SIGTERM received by the parent are passed on to the running children, and to the
  handlers that were there before; the children get a process group of their own, so Ctrl-C
  reaches them once, through the parent.

Each child is forked from the parent after it has imported ``preload`` (torch and Lightning:
the parent runs no torch operation, so no thread pool is copied), so a job starts in
milliseconds. Each job gets ``OMP_NUM_THREADS``: the cores divided among the jobs that run side
by side (1 each with the default n_jobs), unless the environment already sets it. This launcher
imports nothing of the app it runs. Linux and macOS only (fork).
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)
# A check before the sweep may ask torch.cuda.is_available() in this (parent) process; through NVML it
# leaves CUDA uninitialised, so forked jobs can still use the GPU (PyTorch's documented switch for forks).
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")


class WorkerDied(Exception):
    """A job's process ended without sending its result (killed, or exited)."""


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
        preload: modules imported once in this process, before the first job is forked.
    """

    def __init__(self, n_jobs: int | None = None, preload: Sequence[str] = ()) -> None:
        if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
            raise ValueError(f"hydra.launcher.n_jobs={n_jobs!r}: use a whole number >= 1, or null (one per core)")
        self.n_jobs, self.preload = n_jobs or cores(), list(preload)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the jobs; returns one JobReturn per job, in the order given (a failed job: COMPLETED, None)."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Launching %d jobs, %d at a time", len(job_overrides), self.n_jobs)
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        for module in self.preload:
            importlib.import_module(module)

        context = multiprocessing.get_context("fork")
        threads = str(max(1, cores() // min(self.n_jobs, len(job_overrides))))  # the cores shared out
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
                    proc = context.Process(target=self._child, args=(cfg, send, previous, threads), daemon=False)
                    proc.start()
                    running[receive] = (idx, cfg, proc)
                    send.close()
                for receive in wait(list(running)):
                    idx, cfg, proc = running.pop(receive)
                    try:
                        results[idx], told = receive.recv()
                    except EOFError:  # the child ended without sending its result
                        proc.join()
                        killed = proc.exitcode is not None and proc.exitcode < 0
                        how = f"killed by {signal.Signals(-proc.exitcode).name}" if killed else f"exit {proc.exitcode}"
                        hint = "; out of memory?" if proc.exitcode == -signal.SIGKILL else ""
                        reason = WorkerDied(f"the job's process ended ({how}) before it sent a result{hint}")
                        results[idx], told = failure(cfg, reason), False
                    receive.close()
                    proc.join()
                    if not told:  # the job's own process could not tell the callbacks: tell them here
                        self.tell_callbacks(cfg, results[idx])
                    if results[idx].status == JobStatus.FAILED:  # the callbacks know; the sweeper goes on
                        results[idx].status, results[idx].return_value = JobStatus.COMPLETED, None
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return [results[i] for i in sorted(results)]

    def _child(self, cfg: DictConfig, send: Any, handlers: dict, threads: str) -> None:
        """Run one job and send ``(JobReturn, whether on_job_end was called)`` to the parent."""
        os.setpgid(0, 0)  # the terminal's Ctrl-C goes to the parent only, which passes it on once
        _stop_with_parent()
        for s, handler in handlers.items():
            signal.signal(s, handler)
        os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS") or threads
        HydraConfig.instance().set_config(cfg)
        try:
            ret = run_job(
                hydra_context=self.hydra_context,
                task_function=self.task_function,
                config=cfg,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            told = True
        except Exception as e:  # Hydra could not run the job (its folder or config could not be written)
            ret, told = failure(cfg, e), False
        if ret.status == JobStatus.FAILED:  # its exception, if it pickles; else only the message crosses
            try:
                pickle.dumps(ret._return_value)
            except Exception:
                ret._return_value = RuntimeError(f"{type(ret._return_value).__name__}: {ret._return_value}")
        send.send((ret, told))
        send.close()

    def tell_callbacks(self, cfg: DictConfig, ret: JobReturn) -> None:
        """Call the callbacks' ``on_job_end`` here, with the job's output folder set as ``run_job`` sets it."""
        HydraConfig.instance().set_config(cfg)
        with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
            cfg.hydra.runtime.output_dir = os.path.abspath(os.path.join(cfg.hydra.sweep.dir, cfg.hydra.sweep.subdir))
        self.hydra_context.callbacks.on_job_end(config=cfg, job_return=ret)


def failure(cfg: DictConfig, error: BaseException) -> JobReturn:
    """The JobReturn of a job that failed outside its task: status FAILED, ``error`` as its value."""
    ret = JobReturn(overrides=list(cfg.hydra.overrides.task), cfg=cfg, status=JobStatus.FAILED)
    ret.return_value = error
    return ret
