"""``python -m transferkit``: the same as the ``transferkit`` command."""

import sys

from transferkit.cli import main

sys.exit(main())
