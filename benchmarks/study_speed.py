"""The README's study command against a plain PyTorch loop that trains the same 30 runs one by one.

- loop: one process, PyTorch's default threads, the 30 runs (shallow, twin, siamese x seeds 0-9,
  25 epochs, 1000 pairs) one after another with :func:`overhead.bare_seconds` (the same nets,
  tensors, optimizer, steps and per-epoch validation), plus each run's data setup; process
  start-up included.
- study: ``python src/run.py -m model=shallow,twin,siamese 'seed=range(10)'`` as the README
  prints it (the default launcher), wall-clock from start to exit, in a temporary sweep folder.

Prints both, and the ratio study/loop. With ``--busy`` a second measurement of the study runs
while another process keeps one core busy (``python -c 'while True: pass'``), with its ratio
to the idle study. Measure on a machine with nothing else running.

    python benchmarks/study_speed.py            # idle: study, loop, ratio
    python benchmarks/study_speed.py --busy     # and the study with one core kept busy
    python benchmarks/study_speed.py --threads  # one siamese run, 1 and 2 threads, idle and busy
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = [sys.executable, str(ROOT / "src" / "run.py"), "-m", "model=shallow,twin,siamese", "seed=range(10)"]
LOOP = """
import sys, time, tempfile
from pathlib import Path
sys.path.insert(0, {bench!r})
import torch
from overhead import bare_seconds, compose_cfg
from hydra.utils import instantiate
from pairmnist.models.module import predict
out = Path(tempfile.mkdtemp())
for model in ("shallow", "twin", "siamese"):
    for seed in range(10):
        cfg = compose_cfg(model, seed, 25, out, [])
        dm = instantiate(cfg.data, seed=seed)
        dm.setup("fit")
        bare_seconds(cfg, dm)
"""
SIAMESE = [sys.executable, str(ROOT / "src" / "run.py"), "model=siamese", "callbacks.progress_bar.refresh_rate=0"]


def seconds(command: list[str], env: dict | None = None) -> float:
    """Wall-clock seconds of a command, from start to exit; fails if it fails."""
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def study_seconds() -> float:
    """The README's study command, in a temporary sweep folder."""
    with tempfile.TemporaryDirectory() as sweep:
        return seconds([*STUDY, f"hydra.sweep.dir={sweep}"])


def loop_seconds() -> float:
    """The same 30 runs as a plain PyTorch loop in one process (start-up included)."""
    return seconds([sys.executable, "-c", LOOP.format(bench=str(ROOT / "benchmarks"))])


def fit_seconds(threads: int) -> float:
    """``fit_seconds`` of one 25-epoch siamese run with ``threads`` CPU threads."""
    import json

    with tempfile.TemporaryDirectory() as run:
        seconds([*SIAMESE, f"threads={threads}", f"hydra.run.dir={run}"])
        return json.loads((Path(run) / "metrics.json").read_text())["fit_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", action="store_true", help="also time the study with one core kept busy")
    parser.add_argument("--threads", action="store_true", help="one siamese run's fit, 1 and 2 threads, idle and busy")
    args = parser.parse_args()
    if args.threads:
        for label in ("idle", "one core busy"):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if label != "idle" else None
            try:
                print(f"{label}: fit {fit_seconds(1):.1f} s with 1 thread, {fit_seconds(2):.1f} s with 2", flush=True)
            finally:
                if hog:
                    hog.kill()
        return
    study = study_seconds()
    print(f"study (default launcher): {study:.1f} s", flush=True)
    loop = loop_seconds()
    print(f"plain loop, one run after another, default threads: {loop:.1f} s", flush=True)
    print(f"study / loop: {study / loop:.2f}", flush=True)
    if args.busy:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            busy = study_seconds()
        finally:
            hog.kill()
        print(f"study with one core kept busy: {busy:.1f} s, {busy / study:.2f} x the idle study", flush=True)


if __name__ == "__main__":
    main()
