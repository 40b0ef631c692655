"""``python src/report.py <sweep folder>``: tables and figures of a sweep (see pairmnist.report)."""

import sys

from pairmnist.report import main

if __name__ == "__main__":
    sys.exit(main())
