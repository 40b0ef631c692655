"""SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``, a scheduler's preemption): stop, say so, lose nothing.

The first of these signals a process receives:

- inside a job (:func:`stop_job`) raises :class:`Interrupted` at once: the job writes
  ``error.txt`` (first line: the signal and the epoch) and no ``metrics.json``;
- outside a job (between the jobs of a multirun, while the report is written, in the
  process that waits for a launcher's workers) is only recorded: no new job trains, each
  ends at once with ``error.txt``, and the command finishes its report and exits with
  :func:`exit_status` (128 + the signal's number: 130 for SIGINT, 143 for SIGTERM).

A second signal ends the process at once with the signal's default action (files are
written atomically, so nothing is left half-written).

Lightning's own SIGTERM handler (it sets ``trainer.received_sigterm`` to stop at the next
batch) is installed during ``fit`` in front of this one and calls it, so this one decides;
Lightning then runs its usual interrupt path (callbacks' ``on_exception``, loggers
finalised as failed) before :class:`Interrupted` reaches the job.
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
_in_job = False  # inside stop_job(): the first signal raises


class Interrupted(BaseException):
    """A job was stopped by a signal.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` (Hydra's,
    Lightning's, the job's own) lets it through to :func:`pairmnist.jobs.job.run_job`.

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
    first = not _received
    _received.append(signal.Signals(signum))
    if not first:  # asked twice: stop now, the usual way
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _in_job:
        raise Interrupted(signum)
    log.warning(
        "%s received: no new job will train; the command ends once it has written what it has "
        "(send the signal again to stop at once)",
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


def exit_status(signum: int) -> int:
    """The shell's convention for a command ended by a signal: 128 + its number (SIGINT 130, SIGTERM 143)."""
    return 128 + int(signum)


@contextmanager
def stop_job() -> Iterator[None]:
    """Inside this block the first SIGINT or SIGTERM raises :class:`Interrupted`.

    Installs the handlers for the block (restoring the previous ones after it) unless they
    are installed already, as in ``src/run.py``; a launcher's worker process gets them here.

    Raises:
        Interrupted: on entry, when the process already received a signal (the job does
            not start); inside, when one arrives.
    """
    global _in_job
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    install()
    _in_job = True
    try:
        if _received:
            raise Interrupted(_received[0])
        yield
    finally:
        _in_job = False
        if threading.current_thread() is threading.main_thread():
            for signum, handler in previous.items():
                if handler is not None:
                    signal.signal(signum, handler)
