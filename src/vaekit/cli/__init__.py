"""The ``vaekit`` command line (console script ``vaekit = vaekit.cli:main``; also ``python -m vaekit``).

:mod:`.main` builds the parser from a static table of command modules (:data:`.main.COMMANDS`), each with
``add_parser(subparsers)`` and ``run(args)``; :mod:`.options` and :mod:`.output` hold what they share.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
