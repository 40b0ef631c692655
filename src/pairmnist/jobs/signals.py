"""SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``, a scheduler's preemption): stop, say so, lose nothing.

The first of these signals a process receives is recorded (:func:`received`), never raised
where it lands (an exception raised from a handler can leave a lock held, e.g. the TensorBoard
writer's, and the job would hang). The job stops at the next safe point: Lightning's own
SIGTERM handling (``Trainer.received_sigterm``, then ``SIGTERMException`` between batches) or
the job's batch-boundary check (:func:`check`, :class:`pairmnist.train.StopOnSignal`), then
writes ``error.txt`` (first line: the signal and the epoch) and no ``metrics.json``. Between
the jobs of a multirun no new job trains: each ends at once with ``error.txt``, and the command
finishes its report and exits with :func:`exit_status` (130 for SIGINT, 143 for SIGTERM).

A second signal ends the process at once with the signal's default action (files are
written atomically, so nothing is left half-written).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[signal.Signals] = []  # what this process has received, in order


class Interrupted(BaseException):
    """A job was stopped by a signal.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` (Hydra's,
    Lightning's, the job's own) lets it through to :func:`pairmnist.train.run`.

    Attributes:
        signal: the signal, e.g. ``signal.SIGTERM``.
        where: what the job was doing, e.g. ``"at epoch 3 of 50"``; set by the training code.
    """

    def __init__(self, signum: int, where: str = "before training") -> None:
        super().__init__(signum)
        self.signal = signal.Signals(signum)
        self.where = where

    def __str__(self) -> str:
        return f"{self.signal.name} {self.where}"


def _handle(signum: int, frame: FrameType | None) -> None:
    if _received:  # asked twice: stop now, the usual way
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received.append(signal.Signals(signum))
    log.warning(
        "%s received: the running job stops, no new job trains; the command ends once it has written what it "
        "has (send the signal again to stop at once)",
        signal.Signals(signum).name,
    )


def install() -> None:
    """Handle SIGINT and SIGTERM as the module docstring says (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, _handle)


def received() -> signal.Signals | None:
    """The first SIGINT or SIGTERM this process received, else None."""
    return _received[0] if _received else None


def check() -> None:
    """Raise :class:`Interrupted` if this process received a signal (call at a safe point)."""
    if _received:
        raise Interrupted(_received[0])


def exit_status(signum: int) -> int:
    """The shell's convention for a command ended by a signal: 128 + its number (SIGINT 130, SIGTERM 143)."""
    return 128 + int(signum)


@contextmanager
def stop_job() -> Iterator[None]:
    """A job: handlers installed for the block (a launcher's worker gets them here), the previous ones restored.

    Raises:
        Interrupted: on entry, when the process already received a signal (the job does not start).
    """
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    install()
    try:
        check()
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                if handler is not None:
                    signal.signal(signum, handler)
