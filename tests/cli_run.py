"""Helpers for tests that call the ``vaekit`` command line in-process."""

from __future__ import annotations

import json

from vaekit.cli import main


def run(capsys, *argv):  # type: ignore[no-untyped-def]
    """Exit code, stdout and stderr of ``vaekit ARGV``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def last_json(out: str) -> dict:
    """The JSON object on the last stdout line (``--json``)."""
    return json.loads(out.strip().splitlines()[-1])
