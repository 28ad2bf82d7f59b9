"""``python -m runtime``: the command line, as the ``callboard`` script runs it."""

import sys

from runtime._cli.main import main

sys.exit(main())
