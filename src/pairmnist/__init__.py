"""pairmnist: the "weight sharing and auxiliary losses" paired-MNIST study.

Three rooms, imports one way (data, models <- jobs <- analysis reads only job records):

- ``pairmnist.data``: MNIST files -> uint8 tensors -> the course's pairs -> batches (datamodule);
- ``pairmnist.models``: nets, comparison heads, the LightningModule (loss, metrics, optimizer);
- ``pairmnist.jobs``: one job from config to ``metrics.json`` (checks, identity, resume, callbacks);
- ``pairmnist.analysis``: records -> tables, figures, statistics, selection.

``pairmnist.record`` (one job's record: metrics.json and the identity) is what training writes
and the analysis reads; ``pairmnist.atomic`` (atomic file writes) is shared by all of them.
"""

__version__ = "0.1.0"
