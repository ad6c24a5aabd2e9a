"""``python -m vaekit.experiments.chapter5 ARGS``: an alias of ``vaekit reproduce ARGS`` (see :mod:`..alias`)."""

import sys

from ..alias import forward

if __name__ == "__main__":
    sys.exit(forward("vaekit.experiments.chapter5"))
