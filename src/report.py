"""``python src/report.py <sweep folder>``: tables and figures of a sweep (see pairmnist.analysis.report)."""

import sys

from pairmnist.analysis.report import main

if __name__ == "__main__":
    sys.exit(main())
