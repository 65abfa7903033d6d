"""Experiment 3: class-split transfer between two CIFAR-10 tasks.

The recipe lives in ``transferkit/experiments/two_stage.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run two_stage`` does, with the same options::

    python examples/two_stage.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --out runs/two_stage
    python examples/two_stage.py --help
"""

import sys

from transferkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "two_stage", *sys.argv[1:]]))
