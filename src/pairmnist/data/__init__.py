"""Data: MNIST files -> uint8 tensors -> the course's pairs -> batches."""

from pairmnist.data.datamodule import PairMNISTDataModule
from pairmnist.data.mnist import MNIST, load_mnist
from pairmnist.data.pairs import PairSet, PairSplits, generate_pair_sets, make_pair_splits

__all__ = ["MNIST", "PairMNISTDataModule", "PairSet", "PairSplits", "generate_pair_sets", "load_mnist", "make_pair_splits"]
