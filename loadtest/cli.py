"""`python -m loadtest`: run, print the result object, write the report."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from loadtest import progress
from loadtest.config import parse_args
from loadtest.environment import LoadtestError
from loadtest.report import write_report
from loadtest.runner import run
from service.embedded import ServiceStartError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit code 0 on a finished run, 1 on a failed one, 130 on Ctrl-C."""
    config = parse_args(argv)
    progress.set_enabled(not config.json_only)
    try:
        result = run(config)
    except (LoadtestError, ServiceStartError) as error:
        print(f"loadtest failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    md_path, png_path = write_report(result, Path(config.report_dir))
    progress.say(f"report: {md_path}" + (f", {png_path}" if png_path else
                 " (no PNG: pip install matplotlib)"))  # fmt: skip
    print(json.dumps(result, indent=None if config.json_only else 2))
    return 0
