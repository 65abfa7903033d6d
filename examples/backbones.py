"""Experiment 5: a backbone study for a report.

The recipe lives in ``transferkit/experiments/backbones.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run backbones`` does, with the same options::

    python examples/backbones.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --weights mobilenet_v2=../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5,mobilenet_v1_025=../shared/weights/mobilenet_2_5_224_tf_no_top.h5 --backbones mobilenet_v2,mobilenet_v1_025 --out runs/backbones
    python examples/backbones.py --help
"""

import sys

from transferkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "backbones", *sys.argv[1:]]))
