"""Experiment 4: "lilTinyNet": train, fine-tune, evaluate, as three separate steps.

The recipe lives in ``transferkit/experiments/liltinynet.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run liltinynet`` does, with the same options::

    python examples/liltinynet.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --out runs/liltinynet
    python examples/liltinynet.py --help
"""

import sys

from transferkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "liltinynet", *sys.argv[1:]]))
