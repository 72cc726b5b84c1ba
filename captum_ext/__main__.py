"""``python -m captum_ext benchmark`` is ``captum-ext benchmark``."""

import sys

from captum_ext.benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
