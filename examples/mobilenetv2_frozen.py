"""Experiment 2: the minimal recipe, as people type it, done right.

The recipe lives in ``transferkit/experiments/mobilenetv2_frozen.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run mobilenetv2_frozen`` does, with the same options::

    python examples/mobilenetv2_frozen.py --data ../shared/data/cifar10-jpeg.tar.gz --out runs/mobilenetv2_frozen
    python examples/mobilenetv2_frozen.py --help
"""

import sys

from transferkit.experiments import mobilenetv2_frozen

if __name__ == "__main__":
    sys.exit(mobilenetv2_frozen.main())
