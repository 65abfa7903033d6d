"""Handlers of ``train``, ``predict``, ``evaluate`` and ``explain``: your own images, end to end."""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from transferkit._text import plural
from transferkit.cli import EXIT_OK
from transferkit.cli._checks import out_dir, stem
from transferkit.errors import ConfigurationError, DataError

logger = logging.getLogger("transferkit")


def train(args) -> int:
    """Frozen head, then fine-tuning; the stage better on validation is kept, with outputs.

    With ``--resume``, a finished stage is loaded rather than trained again and
    an unfinished one continues from its backup (:mod:`~transferkit.cli._resume`).
    """
    from transferkit.cli._distribute import out_for
    from transferkit.data.folder import load_image_folder
    from transferkit.runs.guard import run_lock
    from transferkit.training.class_weight import resolve_class_weight

    started = time.perf_counter()
    weights = args.resolved_weights  # checked before TensorFlow loaded (cli._checks)
    data = load_image_folder(args.images, image_size=args.image_size, resize=args.resize,
                             seed=args.seed, in_memory=False if args.stream else None)
    _warn_small_test(data)
    resolve_class_weight(args.class_weight, data.y_train, data.class_names)  # names: before --out
    out = out_for(args, out_dir(args))  # a non-chief worker: a temporary folder
    with run_lock(out):  # no other job writes --out meanwhile
        return _train_into(args, data, out, started, weights)


def _train_into(args, data, out: Path, started: float, weights) -> int:
    import keras

    from transferkit.cli._outdir import clear_out_dir
    from transferkit.cli._resume import stage_state, write_run_config
    from transferkit.models.builders import build_transfer_model
    from transferkit.runs.selection import select_run
    from transferkit.training.train import train as train_model

    finished, epochs_done = stage_state(out) if args.resume else ({}, {})
    _say_resumed(args, out, finished, epochs_done)
    keras.utils.set_random_seed(args.seed)
    if "frozen_head" not in finished:
        model = build_transfer_model(args.backbone, data, weights=weights,
                                     name=f"{args.backbone}_{stem(args.images)}")
    if not args.resume:
        clear_out_dir(out)  # the inputs loaded: now the previous run (if --overwrite) may go
        write_run_config(out, args)  # first: a stopped run can be continued, a finished repeated
    batch = {} if args.batch_size is None else {"batch_size": args.batch_size}
    batch["class_weight"] = args.class_weight  # both stages: the same options
    continued = {"resume": True} if args.resume else {"overwrite": True}
    head = finished.get("frozen_head") or train_model(
        model, data, epochs=args.head_epochs, augment="flip", seed=args.seed, name="frozen_head",
        run_dir=out / "frozen_head", **continued, **batch, **_tensorboard(args, "frozen_head"))
    runs = [head]
    if args.epochs != 0:
        runs += ([finished["fine_tuned"]] if "fine_tuned" in finished else
                 _fine_tune(args, head.model, data, out, {**continued, **batch}, started,
                            head_first=False if epochs_done.get("fine_tuned") else "auto"))
    # With class weights the small classes are the point: choose on balanced accuracy.
    kept, why = select_run(runs, balanced_on=(data.x_val, data.y_val) if args.class_weight else None)
    metrics = _write_outputs(args, out, runs, kept, why, data, started)
    print()
    for r in runs:
        print(f"{r.name:<12} test accuracy {r.evaluation.accuracy:.4f}  balanced "
              f"{r.evaluation.balanced_accuracy:.4f}  macro F1 {r.evaluation.f1:.4f}  "
              f"({plural(r.epochs_run, 'epoch')})")
    print(f"Test split: {plural(len(data.y_test), 'image')} ({data.source}).")
    print(f"Kept {why}.")
    print(f"\nWrote {out}/model.keras, metrics.json, report.html, slides.html, "
          f"learning_curves.png, confusion_matrix.png in {metrics['wall_time_s']:.0f} s.")
    print(f"Predict with: transferkit predict {out / 'model.keras'} IMAGE_OR_FOLDER")
    return EXIT_OK


def _say_resumed(args, out: Path, finished: dict, epochs_done: dict) -> None:
    """One line: which stages a resumed run keeps, and where each unfinished one goes on."""
    if not args.resume:
        return
    stages = [f"{name} finished ({plural(run.epochs_run, 'epoch')}): not trained again"
              for name, run in finished.items()]
    stages += [f"{name} continues after epoch {done}" if done else f"{name} starts"
               for name, done in epochs_done.items() if name == "frozen_head" or args.epochs != 0]
    logger.info("Resuming %s: %s.", out, "; ".join(stages))


def _tensorboard(args, stage: str) -> dict:
    """``callbacks=`` with a TensorBoard callback writing to ``--tensorboard``/``stage``, or {}."""
    if args.tensorboard is None:
        return {}
    import keras

    return {"callbacks": [keras.callbacks.TensorBoard(
        log_dir=str(Path(args.tensorboard).expanduser() / stage))]}


OUTPUTS_S = 15.0
"""Seconds a budget keeps back for writing the figures, reports and model after training."""


def _fine_tune(args, model, data, out: Path, options: dict, started: float, *,
               head_first: bool | str) -> list:
    """The fine-tuning stage, within what is left of ``--budget``; [] if nothing is.

    ``head_first``: False where a resumed stage's backup holds the head it trained first.
    """
    from transferkit.errors import BudgetTooShortError
    from transferkit.training.budget import Budget
    from transferkit.training.recipes import fine_tune

    budget = None
    if args.budget is not None:  # the command's clock: it started before the images were read
        budget = Budget(max(1.0, args.budget - OUTPUTS_S),
                        started=time.monotonic() - (time.perf_counter() - started))
    try:
        return [fine_tune(model, data, epochs=args.epochs, budget=budget, seed=args.seed,
                          name="fine_tuned", run_dir=out / "fine_tuned", head_first=head_first,
                          **options, **_tensorboard(args, "fine_tuned"))]
    except BudgetTooShortError as exc:
        print(f"transferkit: warning: no fine-tuning within --budget {args.budget:.0f} "
              f"(of which {OUTPUTS_S:.0f} s are kept for writing the outputs): {exc} "
              "Keeping the frozen head.", file=sys.stderr)
        return []


def _warn_small_test(data) -> None:
    if 0 < len(data.y_test) < 20:
        print(f"transferkit: warning: the test split has {plural(len(data.y_test), 'image')}: one image "
              f"moves the test accuracy by {100 / len(data.y_test):.0f} points. Put more "
              "labelled images in a test/ folder to measure the model.", file=sys.stderr)


def _write_outputs(args, out: Path, runs: list, kept, why: str, data, started: float) -> dict:
    """Save the kept stage's model and write the figures, reports and metrics.json of ``train``."""
    from transferkit._atomic import atomic_link, atomic_write_json, atomic_write_text
    from transferkit.reporting.plots import plot_confusion_matrix, plot_learning_curves
    from transferkit.reporting.report import write_report

    kept.config["data"].update(image_size=list(data.image_shape[:2]), resize=args.resize)
    kept.config["kept"] = why
    # model.keras + run.json side by side (what predict and evaluate read): the kept
    # stage's own saved file, linked rather than saved again, so its bytes are stored once.
    atomic_link(out / kept.name / "model.keras", out / "model.keras")
    kept.artifacts["model"] = "model.keras"
    kept.save(out, save_model=False)
    plot_learning_curves(runs, path=out / "learning_curves.png")
    plot_confusion_matrix(kept.evaluation, path=out / "confusion_matrix.png")
    atomic_write_text(out / "classification_report.txt", kept.evaluation.report)
    # The title names the photo folder and what the runs compare (report_title).
    write_report(runs, out / "report.html", data=data)
    write_report(runs, out / "slides.html", data=data, slides=True)
    metrics = {
        "data": repr(data), "backbone": args.backbone, "image_size": list(data.image_shape[:2]),
        "size_choice": data.provenance.get("size_choice"), "resize": args.resize,
        "seed": args.seed, "class_weight": kept.config.get("class_weight"), "kept": kept.name,
        "kept_because": why,
        "runs": {r.name: {"test_accuracy": r.evaluation.accuracy,
                          "balanced_accuracy": r.evaluation.balanced_accuracy,
                          "f1": r.evaluation.f1,
                          "recall_per_class": r.evaluation.recall_per_class,
                          "val_accuracy": (r.history.get("val_accuracy") or [None])[-1],
                          "epochs": r.epochs_run} for r in runs},
        "wall_time_s": round(time.perf_counter() - started, 1),  # of this command, if resumed
        "resumed": bool(args.resume),
    }
    atomic_write_json(out / "metrics.json", metrics)
    return metrics


def predict(args) -> int:
    """Top-k classes of each image file (folders are searched recursively)."""
    from transferkit.data.images import decode_images
    from transferkit.runs.evaluation import predict as predict_probabilities

    model, names, resize = _load(args.model, args.resize)
    files = args.files  # listed before TensorFlow loaded (cli._checks.check_predict)
    size = model.input_shape[1:3]
    k = min(args.top_k, len(names))
    rows, unreadable = [], []
    for start in range(0, len(files), 256):  # decode and predict 256 at a time: bounded memory
        chunk = files[start:start + 256]
        images, bad = decode_images([p.read_bytes for p in chunk], size, resize)
        unreadable += [chunk[i] for i in bad]
        kept = [(path, im) for path, im in zip(chunk, images) if im is not None]
        if not kept:
            continue
        probs = predict_probabilities(model, np.stack([im for _, im in kept]), batch_size=64,
                                      tta=args.tta)
        for (path, _), p in zip(kept, probs):
            top = np.argsort(-p)[:k]
            rows.append([str(path)] + [x for i in top for x in (names[i], f"{p[i]:.4f}")])
    if not rows:
        raise DataError(f"None of the {len(files)} file(s) could be read as an image: "
                        + ", ".join(map(str, unreadable[:5])))
    for row in rows:
        print(row[0] + "\t" + "\t".join(f"{row[i]} {row[i + 1]}" for i in range(1, len(row), 2)))
    if args.csv:
        header = ["path"] + [x for i in range(1, k + 1) for x in (f"class_{i}", f"prob_{i}")]
        with open(args.csv, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])
        print(f"Wrote {args.csv}")
    if unreadable:
        print(f"transferkit: warning: skipped {len(unreadable)} unreadable image(s): "
              + ", ".join(map(str, unreadable[:5])), file=sys.stderr)
    return EXIT_OK


def evaluate(args) -> int:
    """Accuracy and per-class report of a saved model on labelled images."""
    from transferkit._atomic import atomic_write_json
    from transferkit.data.folder import image_groups, list_entries, read_image_tree
    from transferkit.data.stream import concatenate, file_tree
    from transferkit.reporting.plots import plot_confusion_matrix
    from transferkit.runs.evaluation import evaluate_predictions, predict

    model, names, resize = _load(args.model, args.resize)
    root = Path(args.data).expanduser()  # it exists: cli._checks.check_evaluate
    if args.stream and not root.is_dir():
        raise ConfigurationError(f"--stream reads folders, and {root} is an archive: extract it "
                                 "first, or leave --stream out.")
    read = file_tree if args.stream else read_image_tree
    entries = list_entries(root)
    tree = read(image_groups(entries, root) if args.stream else entries, root,
                image_size=tuple(model.input_shape[1:3]), resize=resize, strict=False)
    split = "test" if "test" in tree else None
    groups = tree["test"] if split else _merge(tree)
    unknown = sorted(set(groups) - set(names))
    if unknown:
        raise DataError(f"{root}: class folders {unknown} are not classes of this model "
                        f"({', '.join(names)}).")
    x = concatenate([groups[c] for c in sorted(groups)])
    y = np.concatenate([np.full(len(groups[c]), names.index(c)) for c in sorted(groups)])
    probs = predict(model, x, batch_size=64, tta=args.tta)
    ev = evaluate_predictions(y, probs, names, split=split or "all", tta=args.tta)
    print(f"{plural(len(y), 'image')} ({'test/ folder' if split else 'every image'} of {root}"
          f"{', each with its mirror image (--tta)' if args.tta else ''})")
    print(f"accuracy {ev.accuracy:.4f}  balanced accuracy {ev.balanced_accuracy:.4f}  precision "
          f"{ev.precision:.4f}  recall {ev.recall:.4f}  F1 {ev.f1:.4f} (macro)\n")
    print(ev.report)
    if split is None and _trained_on(args.model) == root.resolve():
        print(f"Note: {root} is the folder this model was trained on (its run.json says so): "
              "most of these images trained it, so this accuracy is optimistic. The held-out "
              "test split's accuracy is in the training run's metrics.", file=sys.stderr)
    if args.out:
        out = Path(args.out)
        plot_confusion_matrix(ev, path=out / "confusion_matrix.png")
        atomic_write_json(out / "metrics.json", {"model": str(args.model), "data": str(root),
                                                 **ev.to_dict(include_predictions=False)})
        print(f"Wrote {out}/metrics.json and confusion_matrix.png")
    return EXIT_OK


GRID_IMAGES = 32
"""Images in ``explain``'s grid (the first ones; every image gets its own PNG)."""


def explain(args) -> int:
    """Grad-CAM overlay of each image file, and a grid of the first :data:`GRID_IMAGES`."""
    from transferkit.data.images import decode_images
    from transferkit.models.gradcam import grad_cam_and_probabilities, target_layer
    from transferkit.reporting.image_plots import plot_grad_cam

    model, names, resize = _load(args.model, args.resize)
    target_layer(model)  # a model without convolutions: its one-line error before any decoding
    out, files = Path(args.out).expanduser(), args.files  # listed by cli._checks.check_explain
    grid: dict[str, list] = {"images": [], "maps": [], "pred": [], "conf": [], "titles": []}
    written, unreadable, taken = 0, [], set()
    for start in range(0, len(files), 64):  # decode and explain 64 at a time: bounded memory
        chunk = files[start:start + 64]
        images, bad = decode_images([p.read_bytes for p in chunk], model.input_shape[1:3], resize)
        unreadable += [chunk[i] for i in bad]
        kept = [(path, im) for path, im in zip(chunk, images) if im is not None]
        if not kept:
            continue
        x = np.stack([im for _, im in kept])
        maps, probs = grad_cam_and_probabilities(model, x)
        for (path, image), cam, p in zip(kept, maps, probs):
            k = int(p.argmax())
            target = out / _unique(f"{path.stem}_gradcam.png", taken)
            plot_grad_cam(image[None], cam[None], predicted=[k], class_names=names,
                          confidence=[p[k]], titles=[path.name], path=target)
            print(f"{path}\t{names[k]} {p[k]:.4f}\t{target}")
            written += 1
            if len(grid["titles"]) < GRID_IMAGES:
                for key, value in zip(grid, (image, cam, k, p[k], path.name)):
                    grid[key].append(value)
    if not written:
        raise DataError(f"None of the {len(files)} file(s) could be read as an image: "
                        + ", ".join(map(str, unreadable[:5])))
    plot_grad_cam(np.stack(grid["images"]), np.stack(grid["maps"]), predicted=grid["pred"],
                  class_names=names, confidence=grid["conf"], titles=grid["titles"],
                  name=Path(args.model).name, path=out / "grad_cam_grid.png")
    shown = "" if written <= GRID_IMAGES else f" (the first {GRID_IMAGES} images)"
    print(f"Wrote {plural(written, 'Grad-CAM overlay')} and grad_cam_grid.png{shown} to {out}")
    if unreadable:
        print(f"transferkit: warning: skipped {len(unreadable)} unreadable image(s): "
              + ", ".join(map(str, unreadable[:5])), file=sys.stderr)
    return EXIT_OK


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with ``_2``, ``_3`` ... before its suffix if taken; then taken."""
    stem, suffix = name.rsplit(".", 1)
    k, candidate = 1, name
    while candidate in taken:
        k += 1
        candidate = f"{stem}_{k}.{suffix}"
    taken.add(candidate)
    return candidate


def _load(model_path: str, resize: str | None):
    """The model, its class names (from run.json beside it) and the resize mode to use."""
    from transferkit.models.builders import load_model

    model = load_model(model_path)
    record = Path(model_path).expanduser().with_name("run.json")
    data_cfg = {}
    if record.is_file():
        data_cfg = json.loads(record.read_text()).get("config", {}).get("data", {})
    classes = int(model.output_shape[-1])
    names = list(data_cfg.get("class_names") or [str(i) for i in range(classes)])
    if len(names) != classes:
        names = [str(i) for i in range(classes)]
    return model, names, resize or data_cfg.get("resize", "crop")


def _merge(tree: dict) -> dict:
    from transferkit.data.stream import concatenate

    merged: dict[str, list] = {}
    for classes in tree.values():
        for name, images in classes.items():
            merged.setdefault(name, []).append(images)
    return {name: concatenate(parts) for name, parts in merged.items()}


def _trained_on(model_path: str) -> Path | None:
    """The image folder ``transferkit train`` trained this model on, from the run.json beside it."""
    record = Path(model_path).expanduser().parent / "run.json"
    try:
        source = json.loads(record.read_text(encoding="utf-8"))["config"]["data"]["source"]
    except (OSError, ValueError, KeyError, TypeError):  # no record, or not train's: say nothing
        return None
    return Path(source).expanduser().resolve() if isinstance(source, str) and source else None
