"""Experiment 4: "lilTinyNet": train, fine-tune, evaluate, as three separate steps.

The recipe lives in ``transferkit/experiments/liltinynet.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run liltinynet`` does, with the same options::

    python examples/liltinynet.py --data ../shared/data/cifar10-jpeg.tar.gz --out runs/liltinynet
    python examples/liltinynet.py --help
"""

import sys

from transferkit.experiments import liltinynet

if __name__ == "__main__":
    sys.exit(liltinynet.main())
