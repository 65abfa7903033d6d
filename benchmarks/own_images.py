"""Own-image panel: ``transferkit train IMAGES_DIR`` defaults against other settings.

    python benchmarks/own_images.py [--datasets flowers,cifar100,cifar500]
        [--settings default,size128,frozen] [--setting 'long=--epochs 20']
        [--out benchmarks/own_images] [--data-dir ../shared/data] [--weights PATH]
        [--rerun] [--quick]

What it measures: for every (dataset, setting) pair, one ``transferkit train``
run in its own process (seed 0): the stage it kept and that stage's test
accuracy, both stages' test and validation accuracy, the image size chosen,
wall time, the child's user and system CPU seconds and its peak resident
memory. Datasets: ``flowers`` (the 5-class flower archive, passed as is) and
``cifarN`` (the first N CIFAR-10 training images per class, sorted by name,
plus 200 test images per class, extracted once under ``OUT/datasets``).

The target: on every dataset the command's defaults are within 1 point of the
best setting's kept test accuracy, and the stage the defaults keep is not
worse on validation than the frozen head of the same run.

Each finished run is written to ``OUT/rows/<dataset>__<setting>.json`` at
once; a rerun skips those (``--rerun`` repeats them). The panel ends with
``OUT/results.json`` and ``OUT/RESULTS.md`` and prints the table.
``--quick`` (10 images per class, 1+1 epochs) proves the script works; its
figures mean nothing. Figures are only comparable within one run on one
machine: other runs and machines share neither load nor CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
WEIGHTS_NAME = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5"
SETTINGS = {"default": [], "size96": ["--image-size", "96"], "size128": ["--image-size", "128"],
            "size224": ["--image-size", "224"], "frozen": ["--epochs", "0"]}
QUICK_FLAGS = ["--head-epochs", "1", "--epochs", "1"]
TOLERANCE = 0.01  # the default may trail the best setting by 1 point of test accuracy


# --------------------------------------------------------------------------- datasets


def build_cifar(archive: Path, folder: Path, n_train: int, n_test: int = 200) -> Path:
    """Extract the first ``n_train``/``n_test`` CIFAR-10 images per class into ``folder``.

    Args:
        archive: ``cifar10-jpeg.tar.gz`` holding ``cifar10/{train,test}/<class>/*.jpg``.
        folder: where ``train/<class>/`` and ``test/<class>/`` are written.
        n_train: training images per class (the first by file name).
        n_test: test images per class (the first by file name).

    Returns:
        ``folder``; left as is when a build of the same sizes completed there.
    """
    stamp = {"n_train": n_train, "n_test": n_test}
    # beside the tree, not in it: transferkit warns about every non-image file it finds
    marker = folder.with_name(folder.name + ".complete.json")
    if folder.is_dir() and marker.exists() and json.loads(marker.read_text()) == stamp:
        return folder
    marker.unlink(missing_ok=True)
    part = folder.with_name(folder.name + ".part")  # a killed build never looks complete
    shutil.rmtree(part, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        wanted = _first_per_class(members, {"train": n_train, "test": n_test})
        for member in members:  # archive order: the gzip stream is only read forwards
            rel = wanted.get(member.name)
            if rel is None:
                continue
            dest = part / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(tar.extractfile(member).read())  # no path from the archive is trusted
    shutil.rmtree(folder, ignore_errors=True)
    part.rename(folder)
    marker.write_text(json.dumps(stamp))
    return folder


def _first_per_class(members: list[tarfile.TarInfo], counts: dict[str, int]) -> dict[str, str]:
    """Map member names to ``split/class/file`` for the first ``counts[split]`` files per class."""
    groups: dict[tuple[str, str], list[str]] = {}
    for m in members:
        parts = PurePosixPath(m.name).parts
        if len(parts) >= 3 and parts[-3] in counts:
            groups.setdefault((parts[-3], parts[-2]), []).append(m.name)
    wanted = {}
    for (split, label), names in groups.items():
        for name in sorted(names, key=lambda n: PurePosixPath(n).name)[:counts[split]]:
            wanted[name] = f"{split}/{label}/{PurePosixPath(name).name}"
    return wanted


def dataset_path(name: str, data_dir: Path, out: Path, n_test: int = 200) -> Path:
    """The path handed to ``transferkit train`` for dataset ``name``, built if needed."""
    if name == "flowers":
        return data_dir / "flowers-128.tar.gz"
    match = re.fullmatch(r"cifar(\d+)", name)
    if not match:
        raise SystemExit(f"unknown dataset {name!r}: use flowers or cifarN (e.g. cifar500)")
    return build_cifar(data_dir / "cifar10-jpeg.tar.gz", out / "datasets" / name,
                       int(match.group(1)), n_test)


# --------------------------------------------------------------------------- runs


def run_one(data: Path, out: Path, dataset: str, setting: str, flags: list[str],
            env: dict[str, str]) -> dict:
    """Train once in a child process and return the panel's row for it."""
    run_dir = out / "runs" / dataset / setting
    log = run_dir.with_name(setting + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "transferkit", "train", str(data), "--out", str(run_dir),
           "--overwrite", "--seed", "0", *flags]  # a rerun replaces this panel's own run
    started = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        # wait4, not wait: the rusage of this child alone, not of all children so far
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    row = {"dataset": dataset, "setting": setting, "flags": flags, "rc": rc,
           "wall_s": round(wall, 1), "user_s": round(usage.ru_utime, 1),
           "sys_s": round(usage.ru_stime, 1),
           "sys_share": round(usage.ru_stime / cpu, 3) if cpu else None,
           "max_rss_mb": round(usage.ru_maxrss / 1024, 1)}  # ru_maxrss is KiB on Linux
    if rc != 0:
        return {**row, "error": _last_line(log)}
    return {**row, **_from_metrics(json.loads((run_dir / "metrics.json").read_text()))}


def _from_metrics(metrics: dict) -> dict:
    """The row's accuracy fields from the ``metrics.json`` that ``train`` writes."""
    runs, kept = metrics["runs"], metrics["kept"]
    head, fine = runs.get("frozen_head", {}), runs.get("fine_tuned", {})
    return {"kept": kept, "kept_because": metrics.get("kept_because"),
            "test_accuracy": runs[kept]["test_accuracy"], "kept_val": runs[kept].get("val_accuracy"),
            "head_test": head.get("test_accuracy"), "head_val": head.get("val_accuracy"),
            "fine_test": fine.get("test_accuracy"), "fine_val": fine.get("val_accuracy"),
            "image_size": metrics.get("image_size"), "size_choice": metrics.get("size_choice"),
            "train_wall_s": metrics.get("wall_time_s")}


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(empty log)"


def keras_home(weights: Path | None) -> Path | None:
    """A temporary Keras cache serving ``weights`` under every per-size name Keras asks for.

    MobileNetV2's weights do not depend on the input size, so one file serves 96-224 px.
    """
    if weights is None:
        return None
    home = Path(tempfile.mkdtemp(prefix="transferkit-own-images-"))
    (home / "models").mkdir()
    for size in (96, 128, 160, 192, 224):
        (home / "models" / WEIGHTS_NAME.format(size=size)).symlink_to(weights.resolve())
    return home


# --------------------------------------------------------------------------- verdict and tables


def verdict(rows: list[dict]) -> dict:
    """Best setting and pass/FAIL of the default on one dataset's rows.

    Args:
        rows: the dataset's rows; failed ones (``rc != 0``) are ignored.

    Returns:
        ``best``, ``default_minus_best`` (points; None without a default row),
        ``pass`` (None without a default row) and ``why``.
    """
    ok = [r for r in rows if r.get("rc") == 0]
    if not ok:
        return {"best": None, "default_minus_best": None, "pass": None, "why": "no run finished"}
    best = max(ok, key=lambda r: r["test_accuracy"])
    default = next((r for r in rows if r["setting"] == "default"), None)
    out = {"best": best["setting"], "default_minus_best": None, "pass": None, "why": "no default run"}
    if default is None:
        return out
    if default.get("rc") != 0:
        return {**out, "pass": False, "why": "the default run failed"}
    gap = default["test_accuracy"] - best["test_accuracy"]
    out["default_minus_best"] = round(gap * 100, 2)
    if gap < -TOLERANCE - 1e-9:  # the epsilon keeps exactly 1 point a pass despite float error
        return {**out, "pass": False, "why": f"more than {TOLERANCE * 100:.0f} point below best"}
    kept_val, head_val = default.get("kept_val"), default.get("head_val")
    if kept_val is not None and head_val is not None and kept_val < head_val:
        return {**out, "pass": False, "why": "kept stage below the frozen head on validation"}
    return {**out, "pass": True, "why": "within tolerance"}


def machine_line(date: str | None = None) -> str:
    """CPU model, logical CPUs and vector extensions, with the date: what the figures depend on."""
    from transferkit._machine import cpu_description

    return f"{cpu_description()}; {date or time.strftime('%Y-%m-%d')}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f}"


def _row_cells(r: dict) -> list[str]:
    flags = " ".join(r.get("flags") or []) or "(defaults)"
    head = [r["dataset"], r["setting"], f"`{flags}`"]
    cost = [f"{r['wall_s']:.0f}", f"{r['user_s']:.0f}", f"{r['sys_s']:.0f}", _pct(r["sys_share"]),
            f"{r['max_rss_mb']:.0f}"]
    if r.get("rc") != 0:
        return head + [f"FAILED rc={r.get('rc')}: {r.get('error', '')}".replace("|", "/")] \
            + ["-"] * 6 + cost
    size = "x".join(map(str, r.get("image_size") or [])) or "-"
    return head + [r["kept"], _pct(r["test_accuracy"]), _pct(r["head_test"]), _pct(r["head_val"]),
                   _pct(r["fine_test"]), _pct(r["fine_val"]), size] + cost


def markdown(rows: list[dict], verdicts: dict[str, dict], machine: str) -> str:
    """The panel's two tables: every run, then the verdict per dataset."""
    cols = ["dataset", "setting", "flags", "kept", "test %", "head test %", "head val %",
            "fine test %", "fine val %", "size", "wall s", "user s", "sys s", "sys %", "max RSS MB"]
    lines = [f"Machine: {machine}", "", "| " + " | ".join(cols) + " |",
             "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in rows]
    lines += ["", f"Target: the default within {TOLERANCE * 100:.0f} point of the best setting's "
              "kept test accuracy, its kept stage not below the frozen head on validation.", "",
              "| dataset | best setting | default - best (points) | verdict |", "|---|---|---|---|"]
    for name, v in verdicts.items():
        gap = "-" if v["default_minus_best"] is None else f"{v['default_minus_best']:+.1f}"
        word = {True: "pass", False: "FAIL", None: "n/a"}[v["pass"]]
        lines.append(f"| {name} | {v['best'] or '-'} | {gap} | {word} ({v['why']}) |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="flowers,cifar100,cifar500")
    p.add_argument("--settings", default="default,size128,frozen")
    p.add_argument("--setting", action="append", default=[], metavar='NAME="FLAGS"',
                   help="define (and run) a setting, e.g. 'long=--epochs 20'; repeatable")
    p.add_argument("--out", type=Path, help="default benchmarks/own_images (_quick with --quick)")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--weights", type=Path, help="MobileNetV2 no-top .h5 (default: shared weights)")
    p.add_argument("--rerun", action="store_true", help="repeat runs whose row is already written")
    p.add_argument("--quick", action="store_true", help="10 images per class, 1+1 epochs")
    return p.parse_args(argv)


def _plan(args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]]]:
    """The datasets and the settings (name -> flags) this invocation runs."""
    settings = dict(SETTINGS)
    names = ["default", "frozen"] if args.quick else args.settings.split(",")
    for spec in args.setting:
        name, sep, flags = spec.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--setting wants NAME=FLAGS, got {spec!r}")
        settings[name.strip()] = shlex.split(flags)
        names += [] if name.strip() in names else [name.strip()]
    unknown = [n for n in names if n not in settings]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}: known {sorted(settings)}")
    datasets = ["cifar10"] if args.quick else args.datasets.split(",")
    return datasets, {n: settings[n] for n in names}


def _child_env(args: argparse.Namespace) -> tuple[dict[str, str], Path | None]:
    """The children's environment, and the temporary Keras cache to remove at the end."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    weights = args.weights or (args.data_dir.parent / "weights" / WEIGHTS_NAME.format(size=224))
    if args.weights is not None and not weights.exists():
        raise SystemExit(f"--weights {weights} does not exist")
    home = keras_home(weights if weights.exists() else None)
    if home is not None:
        env["KERAS_HOME"] = str(home)
    return env, home


def main(argv: list[str] | None = None) -> int:
    """Run the panel; return 0 when every run finished (verdicts are reported, not enforced)."""
    args = _parse(argv)
    out = (args.out or ROOT / "benchmarks" / ("own_images_quick" if args.quick else "own_images"))
    datasets, settings = _plan(args)
    env, home = _child_env(args)
    rows = []
    try:
        for dataset in datasets:
            rows += _run_dataset(args, out, dataset, settings, env)
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
    verdicts = {d: verdict([r for r in rows if r["dataset"] == d]) for d in datasets}
    machine = machine_line()
    table = markdown(rows, verdicts, machine)
    (out / "results.json").write_text(json.dumps(
        {"machine": machine, "date": time.strftime("%Y-%m-%d %H:%M"), "quick": args.quick,
         "rows": rows, "verdicts": verdicts}, indent=1))
    (out / "RESULTS.md").write_text(f"# Own-image panel\n\n{table}")
    print("\n" + table)
    return 0 if all(r["rc"] == 0 for r in rows) else 1


def _run_dataset(args: argparse.Namespace, out: Path, dataset: str,
                 settings: dict[str, list[str]], env: dict[str, str]) -> list[dict]:
    """Every setting on one dataset, reusing rows already written unless ``--rerun``."""
    rows_dir = out / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    data = None  # built lazily: a fully resumed dataset needs no extraction
    rows = []
    for setting, flags in settings.items():
        row_file = rows_dir / f"{dataset}__{setting}.json"
        if row_file.exists() and not args.rerun:
            rows.append(json.loads(row_file.read_text()))
            print(f"{dataset}/{setting}: row already written, skipped")
            continue
        if data is None:
            data = dataset_path(dataset, args.data_dir, out, n_test=20 if args.quick else 200)
        # quick flags go first so that a setting's own flags (frozen's --epochs 0) win
        all_flags = [*QUICK_FLAGS, *flags] if args.quick else list(flags)
        print(f"{dataset}/{setting}: transferkit train {' '.join(all_flags)}", flush=True)
        row = run_one(data, out, dataset, setting, all_flags, env)
        row_file.write_text(json.dumps(row, indent=1))
        rows.append(row)
        done = (f"kept {row['kept']}, test {row['test_accuracy']:.4f}" if row["rc"] == 0
                else f"FAILED rc={row['rc']}: {row['error']}")
        print(f"  {done} in {row['wall_s']:.0f} s", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
