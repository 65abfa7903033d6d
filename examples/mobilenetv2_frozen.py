"""Experiment 2: the minimal recipe, as people type it, done right.

The recipe lives in ``transferkit/experiments/mobilenetv2_frozen.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run mobilenetv2_frozen`` does, with the same options::

    python examples/mobilenetv2_frozen.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --out runs/mobilenetv2_frozen
    python examples/mobilenetv2_frozen.py --help
"""

import sys

from transferkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "mobilenetv2_frozen", *sys.argv[1:]]))
