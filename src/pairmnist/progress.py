"""``TrainingProgressBar``: Lightning's TQDM progress bar without a bar per validation pass."""

from __future__ import annotations

from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm


class TrainingProgressBar(TQDMProgressBar):
    """Epoch and test bars as usual; during ``fit`` the validation bar is disabled.

    Validation is one large batch per epoch (``data.eval_batch_size``), so its bar would
    only flash "1/1", and creating and closing it every epoch costs more than the pass's
    bookkeeping (about 2 ms an epoch, benchmarks/README.md). ``Trainer.validate`` keeps it.
    """

    def init_validation_tqdm(self) -> Tqdm:
        if self.trainer.state.fn == "fit":
            return Tqdm(disable=True)
        return super().init_validation_tqdm()
