"""``python -m vaekit.cli`` runs the command line."""

import sys

from vaekit.cli import main

sys.exit(main())
