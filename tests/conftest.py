"""Shared fixtures: composed configs, an MNIST cache, and a helper to run src/run.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from pairmnist.data.mnist import MNIST, load_mnist
from pairmnist.jobs.naming import register

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
RUN = ROOT / "src" / "run.py"
TINY = ["debug=tiny"]  # a few pairs, one epoch, no progress display (conf/debug/tiny.yaml)

register()


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
    """Run ``python src/run.py *args`` in a subprocess, with the session's MNIST cache."""

    def _run(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [sys.executable, str(RUN), *args, f"paths.data_dir={data_dir}"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})},
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"run.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return _run
