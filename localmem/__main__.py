"""``python -m localmem``: the same command line as the ``localmem`` console script."""

import sys

from localmem.cli import main

sys.exit(main())
