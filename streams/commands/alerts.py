"""`driftradar alerts`: not built yet (see the open issues)."""

from __future__ import annotations

import argparse
import sys

HELP = "not yet available"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This command takes no arguments yet."""


def run(args: argparse.Namespace) -> int:
    print("driftradar alerts: not yet implemented", file=sys.stderr)
    return 2
