"""``python scripts/bench.py [--quick] [--json]``: the same as ``bplab bench``."""

import sys

from lab.ui.cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
