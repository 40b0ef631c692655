"""Learning: the nets (plain ``nn.Module``), the comparison heads and the LightningModule.

Imports torch and Lightning only: never ``pairmnist.jobs`` or ``pairmnist.analysis``.
"""
