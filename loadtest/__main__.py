"""`python -m loadtest` runs the benchmark (see `loadtest.config` for the options)."""

import sys

from loadtest.cli import main

sys.exit(main())
