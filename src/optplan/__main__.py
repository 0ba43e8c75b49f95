"""``python -m optplan``: the ``optplan`` command line, for environments without the script."""

import sys

from optplan.cli import main

sys.exit(main())
