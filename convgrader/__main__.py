"""``python -m convgrader``: the ``convgrader`` command line, where it is not installed."""
import sys

from convgrader.cli import main

sys.exit(main())
