"""``python -m captum_ext benchmark`` is ``captum-ext benchmark``."""

import sys

from captum_ext.benchmark.cli import main

sys.exit(main())
