"""``python src/evaluate.py <job folder> [seed=<n>] [--device cpu]``: a trained job's test accuracy, again.

Rebuilds the job's net from its saved config, loads ``checkpoints/final.ckpt`` and tests it
on the test pairs of the job's seed, or of seed n, on the device this machine has (a CUDA GPU,
else the CPU; ``--device`` names another), whichever device the job trained on. A search
trial's folder gives one line per tuning seed (its ``seed<N>/`` runs, each also a job folder).
Options and ``seed=`` go in any order. The work is done by :func:`pairmnist.jobs.load.evaluate`.
Exit status 1, with one line, for a folder that holds no trained job or a device this machine
lacks.
"""

from __future__ import annotations

import argparse
import os
import sys


def seed_override(text: str) -> int:
    """``seed=<n>`` -> n."""
    key, _, value = text.partition("=")
    if key != "seed" or not value.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected seed=<n>, e.g. seed=3")
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description="A trained job's test accuracy, again, from its checkpoint.")
    parser.add_argument("folder", help="a job folder (holds .hydra/config.yaml and checkpoints/final.ckpt)")
    parser.add_argument("seed", nargs="?", type=seed_override, help="seed=<n>: the test pairs of another seed")
    parser.add_argument("--device", default="auto", help="auto (a CUDA GPU if there is one, else cpu), cpu, gpu")
    args = parser.parse_intermixed_args()
    sys.path.insert(1, os.getcwd())  # a job's own module in the folder the command runs from, as for run.py

    # torch and Lightning load only once the arguments are valid
    from hydra.errors import InstantiationException
    from pytorch_lightning.accelerators import AcceleratorRegistry

    from pairmnist.jobs.load import NotAJob, evaluate, runs

    names = sorted(AcceleratorRegistry.available_accelerators())
    here = [name for name in names if AcceleratorRegistry[name]["accelerator"].is_available()]
    if args.device not in ("auto", *here, *(["gpu"] if {"cuda", "mps"} & set(here) else [])):
        sys.exit(f"--device {args.device}: not on this machine; available: auto, {', '.join(here)}")
    try:
        for folder in runs(args.folder):
            result = evaluate(folder, args.seed, args.device)
            digits = "" if result["test_digit_acc"] is None else f", test_digit_acc {result['test_digit_acc']}"
            print(f"test_acc {result['test_acc']}{digits} ({result['n_pairs']} test pairs of seed {result['seed']})")
    except NotAJob as e:
        sys.exit(str(e))
    except InstantiationException as e:  # e.g. a job's own module that is not importable from here
        cause = e.__cause__ or e
        sys.exit(f"{type(cause).__name__}: {' '.join(str(cause).split())}")


if __name__ == "__main__":
    main()
