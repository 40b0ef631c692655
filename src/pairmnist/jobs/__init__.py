"""Running jobs: config schema and checks, identity and folder names, one job's training and
records, resume, signals, its console, the Hydra and Lightning callbacks, and loading a
finished job back (``load``).

May import ``pairmnist.data`` and ``pairmnist.models``; never ``pairmnist.analysis``.
``records`` and ``identity`` are plain Python (no torch), so the analysis can read them.
"""
