"""Analysing results: job records -> groups by identity -> tables, figures, statistics, selection.

Reads files only: imports neither torch nor Lightning (only the plain-Python
``pairmnist.jobs.records`` and ``pairmnist.jobs.identity``), so a report runs anywhere in a second.
"""
