"""What a job prints: Lightning's notices that say nothing about the run are silenced.

Lightning logs, at INFO level on its ``rank_zero`` logger, which accelerators exist, an
advertisement for a cloud logger, and that ``max_epochs`` was reached. A job prints its own
lines instead (:mod:`pairmnist.jobs.job`: what it trains, where, its result;
:mod:`pairmnist.jobs.callbacks`: the epochs' metrics). :func:`quiet_lightning` drops exactly
those notices; every other message and every warning still shows.
"""

from __future__ import annotations

import logging
import warnings

# Beginnings of the INFO messages dropped (pytorch-lightning 2.6's wording).
NOTICES = (
    "GPU available:",  # the job's start line names the device used
    "TPU available:",
    "HPU available:",
    "LOCAL_RANK:",  # CUDA_VISIBLE_DEVICES, on a GPU
    "💡 Tip:",  # the cloud-logger advertisement
    "`Trainer.fit` stopped: `max_epochs=",  # the job's result line gives the number of epochs
    "Loading `train_dataloader` to estimate number of stepping batches",  # the one-cycle schedule's length
    "The following callbacks returned in `LightningModule.configure_callbacks` will override",  # test after fit
)


class DropNotices(logging.Filter):
    """Drops the log records whose message starts with one of :data:`NOTICES`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOTICES)


def quiet_lightning() -> None:
    """Install :class:`DropNotices` on Lightning's ``rank_zero`` logger (once per process)."""
    logger = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, DropNotices) for f in logger.filters):
        logger.addFilter(DropNotices())
    # pytorch-lightning 2.6 calls a torch.utils._pytree API that torch 2.14 deprecates; nothing the user can act on.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning suggests DataLoader workers on machines with many cores; batches are slices of in-memory
    # tensors, so workers would have nothing to do (data.num_workers must be 0).
    warnings.filterwarnings("ignore", message=r"The '\w+' does not have many workers")
