"""Running jobs: config schema and checks, identity and folder names, one job's training and
records, resume, signals, and the Hydra and Lightning callbacks.

May import ``pairmnist.data`` and ``pairmnist.models``; ``pairmnist.analysis`` only in the Hydra
callback that writes the report when a multirun ends.
``records`` and ``identity`` are plain Python (no torch), so the analysis can read them.
"""
