"""`python -m bench`: every benchmark in turn (see bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())
