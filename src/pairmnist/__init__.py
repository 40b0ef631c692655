"""pairmnist: the "weight sharing and auxiliary losses" paired-MNIST study.

Data flows one way: MNIST files -> uint8 tensors (``pairmnist.data.mnist``) -> course pairs
(``pairmnist.data.pairs``) -> batches (``pairmnist.data.datamodule``) -> nets
(``pairmnist.nets``) -> loss and metrics (``pairmnist.module``) -> ``metrics.json``
(``pairmnist.job``) -> tables and figures (``pairmnist.report``).
"""

__version__ = "0.1.0"
