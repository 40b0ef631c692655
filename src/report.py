"""``python src/report.py <sweep folder>``: tables and figures of a sweep (pairmnist.analysis.report).

``--results``, ``--compare``, ``--store``: the stored records (pairmnist.analysis.results).
"""

import sys

from pairmnist.analysis.results import main

if __name__ == "__main__":
    sys.exit(main())
