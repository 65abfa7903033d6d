"""Experiment 5: a backbone study for a report.

The recipe lives in ``transferkit/experiments/backbones.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run backbones`` does, with the same options::

    python examples/backbones.py --data ../shared/data/cifar10-jpeg.tar.gz --out runs/backbones
    python examples/backbones.py --help
"""

import sys

from transferkit.experiments import backbones

if __name__ == "__main__":
    sys.exit(backbones.main())
