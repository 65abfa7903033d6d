"""Export: each format's size, speed and agreement with the model, and what int8 costs.

    python benchmarks/export.py [--data ../shared/data/cifar10-jpeg.tar.gz] [--per-class 100]
        [--epochs 5] [--calibration 200] [--out benchmarks/export.json] [--quick]

What it measures: a frozen MobileNetV2 (ImageNet weights from the Keras cache,
32 px CIFAR-10 images upscaled to 96 inside the model) whose head is trained
with ``tk.train`` on a real CIFAR-10 subset (``--per-class`` images per class
in train + validation and in test, seed 0), then exported with
``tk.export_model`` as a SavedModel, a float TFLite file, an int8 TFLite file
(calibrated on ``--calibration`` training images) and ONNX. For each: the
export's wall and CPU seconds (user + system, every thread, of this process),
the size on disk, and, on the test images, read back by its own runtime
(TensorFlow, TensorFlow's TFLite interpreter, onnxruntime): the largest
probability difference from the Keras model, the share of images given the
same top class, the test accuracy and the images per second.

Prints the CPU (model, vector extensions) and a table, and writes the figures
as JSON to ``--out``. ``--quick`` (10 images per class, 1 epoch) proves the
script works; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CASES = (("savedmodel", None, "model_savedmodel"), ("tflite", None, "model.tflite"),
         ("tflite", "int8", "model_int8.tflite"), ("onnx", None, "model.onnx"))


def _timed(call, *args, **kwargs):
    """``(result, wall seconds, CPU seconds)`` of ``call(*args, **kwargs)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(args) -> dict:
    import keras
    import numpy as np

    import transferkit as tk
    from transferkit._backend import native_stderr_hidden
    from transferkit._machine import cpu_description

    data = tk.load_cifar10(args.data, limit_per_class=args.per_class, seed=0, download=False)
    keras.utils.set_random_seed(0)
    model = tk.build_transfer_model("mobilenet_v2", data)
    run = tk.train(model, data, epochs=args.epochs, seed=0, verbose=0)
    rng = np.random.default_rng(0)
    calibration = data.x_train[np.sort(rng.choice(len(data.x_train),
                                                  min(args.calibration, len(data.x_train)),
                                                  replace=False))]
    model.predict(data.x_test[:64], batch_size=64, verbose=0)  # traced: time the steady state
    _, wall, _ = _timed(model.predict, data.x_test, batch_size=64, verbose=0)
    rows = [{"format": "keras", "size_mb": None, "test_accuracy": run.evaluation.accuracy,
             "img_s": round(len(data.x_test) / wall, 1)}]
    out = Path(args.workdir)
    for format, quantize, name in CASES:
        with native_stderr_hidden():
            exported, wall, cpu = _timed(
                tk.export_model, model, out / name, format=format, quantize=quantize,
                calibration_images=calibration if quantize else None)
            check = tk.compare_exported(model, exported, data.x_test, data.y_test)
            _, predict_s, _ = _timed(exported.predict, data.x_test)  # its runtime warm now
        rows.append({"format": format + (f" {quantize}" if quantize else ""),
                     "size_mb": round(exported.size_bytes / 2**20, 2),
                     "export_wall_s": round(wall, 1), "export_cpu_s": round(cpu, 1),
                     "max_abs_diff": check.max_abs_diff, "agreement": check.agreement,
                     "test_accuracy": check.accuracy_exported,
                     "accuracy_change_points": round(100 * check.accuracy_change, 2),
                     "img_s": round(len(data.x_test) / predict_s, 1)})
        print(rows[-1], flush=True)
    return {"machine": cpu_description(), "measured": time.strftime("%Y-%m-%d %H:%M"),
            "data": repr(data), "epochs": args.epochs, "calibration_images": len(calibration),
            "float32_weights_mb": round(tk.parameter_counts(model)["total"] * 4 / 2**20, 2),
            "test_images": len(data.x_test), "rows": rows}


def markdown(result: dict) -> str:
    lines = ["| format | size | largest difference | same top class | test accuracy "
             "| change (points) | images/s | export (wall / CPU) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["format"] == "keras":
            lines.append(f"| .keras (Keras) | | | | {r['test_accuracy']:.4f} | | "
                         f"{r['img_s']:.0f} | |")
            continue
        lines.append(f"| {r['format']} | {r['size_mb']:.1f} MB | {r['max_abs_diff']:.1e} | "
                     f"{100 * r['agreement']:.1f} % | {r['test_accuracy']:.4f} | "
                     f"{r['accuracy_change_points']:+.2f} | {r['img_s']:.0f} | "
                     f"{r['export_wall_s']:.0f} s / {r['export_cpu_s']:.0f} s |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "export.json"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.per_class, args.epochs = 10, 1
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        args.workdir = workdir
        result = measure(args)
    result["quick"] = args.quick
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{result['machine']}; {result['data']}; {result['epochs']} epochs; int8 calibrated "
          f"on {result['calibration_images']} training images; float32 weights "
          f"{result['float32_weights_mb']} MB\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
