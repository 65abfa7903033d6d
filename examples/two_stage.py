"""Experiment 3: class-split transfer between two CIFAR-10 tasks.

The recipe lives in ``transferkit/experiments/two_stage.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run two_stage`` does, with the same options::

    python examples/two_stage.py --data ../shared/data/cifar10-jpeg.tar.gz --out runs/two_stage
    python examples/two_stage.py --help
"""

import sys

from transferkit.experiments import two_stage

if __name__ == "__main__":
    sys.exit(two_stage.main())
