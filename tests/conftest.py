"""Shared fixtures: composed configs, an MNIST cache, and helpers to run or start src/run.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from pairmnist.data.mnist import MNIST, load_mnist
from pairmnist.jobs.hydra_callbacks import register

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
RUN = ROOT / "src" / "run.py"
TINY = ["debug=tiny"]  # a few pairs, one epoch, no progress display (conf/debug/tiny.yaml)
# For jobs that must still be training when a test acts on them: no progress display at all.
QUIET = ["data.n_pairs=60", "data.n_val_pairs=40", "data.batch_size=20", "callbacks.progress_bar.refresh_rate=0"]
# One torch thread per run.py process: the tests share few cores with other work, where a process's
# threads wait for each other (a tiny job's epoch then takes 0.4 s instead of 10 ms on 2 busy cores).
CLI_ENV = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}

register()
# In-process jobs as CLI_ENV's: one thread (and no idle-core measurement, which waits 0.2 s per job).
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-session MNIST cache folder (built once, reused by every test and subprocess)."""
    path = tmp_path_factory.mktemp("data")
    load_mnist("packaged", path)
    return path


@pytest.fixture(scope="session")
def mnist(data_dir: Path) -> MNIST:
    return load_mnist("packaged", data_dir)


@pytest.fixture
def make_cfg(tmp_path: Path, data_dir: Path) -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with ``overrides`` (plus TINY) as a job of ``tmp_path``."""

    def _make(*overrides: str, tiny: bool = True) -> DictConfig:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            cfg = compose(
                "config",
                overrides=[*(TINY if tiny else []), f"paths.data_dir={data_dir}", *overrides],
                return_hydra_config=True,
            )
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "job")
        return cfg

    return _make


@pytest.fixture
def run_cli(data_dir: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python src/run.py *args`` in a subprocess in ``cwd`` (the repository root), with the MNIST cache."""

    def _run(*args: str, check: bool = True, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(RUN), *args, f"paths.data_dir={data_dir}"],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**CLI_ENV, **(env or {})},
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"run.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return _run


@pytest.fixture
def start_cli(data_dir: Path, tmp_path: Path) -> Callable[..., subprocess.Popen]:
    """Start ``python src/run.py *args`` (with the session's MNIST cache) in the background.

    Its stdout and stderr go, interleaved, to the file ``proc.output`` (a pipe nobody reads
    could fill up and stall it).
    """
    started = []

    def _start(*args: str) -> subprocess.Popen:
        output = tmp_path / f"output{len(started)}.txt"
        with open(output, "w") as f:
            proc = subprocess.Popen(
                [sys.executable, str(RUN), *args, f"paths.data_dir={data_dir}"],
                stdout=f,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=CLI_ENV,
            )
        proc.output = output
        started.append(proc)
        return proc

    yield _start
    for proc in started:  # a failed test leaves no training process behind
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def unpadded(text: str) -> str:
    """Markdown tables without the padding of their cells (``|   1 | a   |`` -> ``| 1 | a |``)."""
    return re.sub(r" {2,}\|", " |", re.sub(r"\| {2,}", "| ", text))


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail if ``proc`` ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"run.py ended ({proc.returncode}) too early:\n{proc.output.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout} s:\n{proc.output.read_text()[-3000:]}")
        time.sleep(0.05)
