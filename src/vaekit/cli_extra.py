"""``vaekit plot`` (figures and an HTML page of a run) and ``vaekit sweep`` (a user-defined grid from a file)."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    return None
