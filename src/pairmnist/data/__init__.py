"""Data: MNIST files -> uint8 tensors -> the course's pairs -> batches.

The names below load their module on first use (PEP 562), so that importing a light part
(say ``pairmnist.data.mnist`` for the config check in Hydra's parent process) does not
import PyTorch Lightning with the datamodule: about 3 s of start-up per process.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "MNIST": "mnist",
    "load_mnist": "mnist",
    "PairSet": "pairs",
    "PairSplits": "pairs",
    "generate_pair_sets": "pairs",
    "make_pair_splits": "pairs",
    "PairMNISTDataModule": "datamodule",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
