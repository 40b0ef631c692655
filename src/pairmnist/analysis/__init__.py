"""Analysing results: job records -> groups by identity -> tables, figures, statistics, selection.

Reads files only: imports neither torch nor Lightning (only the plain-Python
``pairmnist.record`` and ``pairmnist.record``), so a report runs anywhere in a second.
"""
