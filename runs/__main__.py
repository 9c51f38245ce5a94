"""python -m runs: a dataset run from the command line (runs.runner)."""
import sys

from runs.runner import main

sys.exit(main())
