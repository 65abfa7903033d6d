"""Experiment 1: frozen ImageNet MobileNetV2 vs a CNN trained from scratch.

The recipe lives in ``transferkit/experiments/transfer_vs_baseline.py`` (read it: it is the
whole experiment, built from the public API); this script runs it exactly as
``transferkit run transfer_vs_baseline`` does, with the same options::

    python examples/transfer_vs_baseline.py --data ../shared/data/cifar10-jpeg.tar.gz \
        --weights ../shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 --out runs/transfer_vs_baseline
    python examples/transfer_vs_baseline.py --help
"""

import sys

from transferkit.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "transfer_vs_baseline", *sys.argv[1:]]))
