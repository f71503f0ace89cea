"""`python -m service.cli` runs the `fraudwatch` command."""

import sys

from service.cli import main

sys.exit(main())
