"""pairmnist: the "weight sharing and auxiliary losses" paired-MNIST study.

Imports one way (data, models <- train, jobs <- analysis reads only job records):

- ``pairmnist.data``: MNIST files -> uint8 tensors -> the course's pairs -> batches (datamodule);
- ``pairmnist.models``: nets, comparison heads, the LightningModule (loss, metrics, optimizer);
- ``pairmnist.train``: one job, top to bottom, from config to ``metrics.json``;
- ``pairmnist.jobs``: the Hydra side (config check, folder names, report at the end, signals) and
  loading a finished job back;
- ``pairmnist.analysis``: records -> tables, figures, statistics, selection.

``pairmnist.record`` (one job's record: metrics.json and the identity) is what training writes
and the analysis reads; ``pairmnist.atomic`` (atomic file writes) is shared by all of them.
"""
