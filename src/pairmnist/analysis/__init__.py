"""Analysing results: job records -> groups by identity -> tables, figures, statistics, selection.

Reads files only, through the plain-Python ``pairmnist.record``: imports no torch, Lightning,
Hydra or OmegaConf, so a report runs anywhere in a second.
"""
