"""``python src/evaluate.py <job folder> [seed=<n>] [--device cpu]``: a trained job's test accuracy, again.

Rebuilds the job's net from its saved config, loads ``checkpoints/final.ckpt`` and tests it
on the test pairs of the job's seed, or of seed n, on the device this machine has (a CUDA GPU,
else the CPU; ``--device`` names another), whichever device the job trained on. The work is done by
:func:`pairmnist.jobs.load.evaluate`. Exit status 1, with one line, for a folder that holds
no trained job.
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
    args = parser.parse_args()
    sys.path.insert(1, os.getcwd())  # a job's own module in the folder the command runs from, as for run.py

    from hydra.errors import InstantiationException

    from pairmnist.jobs.load import NotAJob, evaluate  # torch and Lightning load only once the arguments are valid

    try:
        result = evaluate(args.folder, args.seed, args.device)
    except NotAJob as e:
        sys.exit(str(e))
    except InstantiationException as e:  # e.g. --device gpu where there is none
        cause = e.__cause__ or e
        sys.exit(f"{type(cause).__name__}: {' '.join(str(cause).split())}")
    digits = "" if result["test_digit_acc"] is None else f", test_digit_acc {result['test_digit_acc']}"
    print(f"test_acc {result['test_acc']}{digits} ({result['n_pairs']} test pairs of seed {result['seed']})")


if __name__ == "__main__":
    main()
