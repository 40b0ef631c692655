"""An allow-list unpickler for the numpy arrays inside MNIST pickles.

``pickle.load`` executes whatever callable a file names, so a tampered data file could run
arbitrary code. :func:`load_arrays` only lets a pickle rebuild numpy arrays and dtypes.
"""

from __future__ import annotations

import codecs
import pickle
from typing import IO, Any

import numpy as np

try:  # numpy >= 2 moved the array reconstructor; files written by numpy 1 still name the old path
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in protocol-2 pickles; runs no code
}


class UnsafePickleError(pickle.UnpicklingError):
    """Raised when a pickle asks for anything but numpy arrays."""


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted({f"{m}.{n}" for m, n in _ALLOWED}))
            raise UnsafePickleError(
                f"refused to unpickle '{module}.{name}': only numpy arrays are allowed ({allowed})"
            ) from None


def load_arrays(file: IO[bytes]) -> Any:
    """Unpickle ``file``, which may only hold containers of numpy arrays.

    Python-2 era pickles (such as the classic ``mnist.pkl.gz``) are read with
    ``encoding="latin1"``, the documented way to load numpy arrays pickled by Python 2.

    Raises:
        UnsafePickleError: the pickle names any global other than numpy's array
            reconstructor, ``numpy.ndarray``, ``numpy.dtype`` or ``codecs.encode`` (e.g. ``os.system``).
    """
    return _AllowListUnpickler(file, encoding="latin1").load()
