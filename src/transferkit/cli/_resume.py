"""``train``'s options resolved (flags over ``--config`` over a resumed run's own), recorded, checked.

Every ``train`` writes the options its run is made of to ``--out/config.toml``
before it trains, so the run can be repeated (``--config RUN/config.toml --out
NEW``) and continued (``--resume``). Continuing takes the options it is not
given from that file and refuses ones that differ from it, saying which: the
folder then holds one run, not two stitched together. Nothing here imports
Keras; :func:`resolve_train_options` runs in ``train``'s cheap checks.
"""

from __future__ import annotations

from pathlib import Path

from transferkit.cli._config import (
    RUN_CONFIG_FILE,
    RUN_CONFIG_MARK,
    config_actions,
    dumps_toml,
    is_run_config,
    load_config,
)
from transferkit.errors import ConfigurationError, DataNotFoundError

RUN_OPTIONS = ("images", "backbone", "image_size", "resize", "head_epochs", "epochs", "budget",
               "batch_size", "class_weight", "weights", "seed")
"""What a run is made of, recorded in its config.toml. Where its outputs go (``--out``,
``--tensorboard``) and how it starts (``--overwrite``, ``--resume``) are not part of it."""
STAGES = ("frozen_head", "fine_tuned")
"""``train``'s stages, in order; each has its own folder in ``--out``."""


def resolve_train_options(args) -> bool:
    """Set ``args`` from ``--config`` and, with ``--resume``, from the run's own config.toml.

    Flags given on the command line win over ``--config``, which wins over the
    recorded options. A resumed run whose options differ from its record is
    refused; a finished one makes the command say so and exit 0.

    Returns:
        True for ``--resume`` of a finished run (the command then only says so).

    Raises:
        ConfigurationError: For a bad config file (the key named), ``--resume``
            with ``--overwrite`` or of a budgeted run, options that differ from
            the run's, or no IMAGES_DIR at all.
        DataNotFoundError: ``--resume`` where ``--out`` holds no run.
    """
    from transferkit.cli._parser import build_parser, given_options, verb_parser

    parser = verb_parser(build_parser(), "train")
    given = given_options(args.argv, "train") if hasattr(args, "argv") else frozenset()
    sources = {dest: "the command line" for dest in given}
    if args.config is not None:
        for dest, value in load_config(args.config, parser).items():
            if dest not in given:
                setattr(args, dest, value)
                sources[dest] = f"--config {args.config}"
    if args.resume and _take_recorded(args, parser, sources):
        args.func, args.needs_tensorflow = _finished, False
        return True
    if args.images is None:
        raise ConfigurationError("IMAGES_DIR is missing: give the images' folder, or --config "
                                 "FILE.toml holding images = \"FOLDER\".")
    return False


def _take_recorded(args, parser, sources: dict[str, str]) -> bool:
    """``--resume``: the run's recorded options under the ones given; differences refused.

    Returns whether the run had finished.
    """
    from transferkit.cli._checks import out_dir

    if args.overwrite:
        raise ConfigurationError("--resume continues the run in --out and --overwrite deletes "
                                 "it: pass one of them.")
    if args.out is None and args.images is None:
        raise ConfigurationError("--resume needs --out RUN_FOLDER (or the IMAGES_DIR whose run "
                                 "is in runs/<its name>).")
    out = out_dir(args)
    recorded_file = out / RUN_CONFIG_FILE
    if not is_run_config(recorded_file):
        from transferkit.cli._outdir import is_transferkit_output

        if out.is_dir() and is_transferkit_output(out):
            raise ConfigurationError(
                f"--resume: {out} holds a run without its {RUN_CONFIG_FILE} (from an older "
                "transferkit), so it cannot be checked to be this run; start again with "
                "--overwrite.")
        raise DataNotFoundError(f"--resume: {out} holds no transferkit run to continue (no "
                                f"{RUN_CONFIG_FILE}); start one without --resume.")
    loaded = load_config(recorded_file, parser, what="the run's")
    recorded = {dest: loaded.get(dest, parser.get_default(dest)) for dest in RUN_OPTIONS}
    for dest in RUN_OPTIONS:
        if dest not in sources:
            setattr(args, dest, recorded[dest])
    differences = [_difference(dest, recorded[dest], getattr(args, dest), sources[dest])
                   for dest in RUN_OPTIONS if dest in sources
                   and _identity(dest, getattr(args, dest)) != _identity(dest, recorded[dest])]
    if differences:
        raise ConfigurationError(
            f"--resume: the run in {out} was started with {'; '.join(differences)}. Leave those "
            f"options out (they are read from its {RUN_CONFIG_FILE}) or choose another --out.")
    if args.budget is not None:
        raise ConfigurationError(f"--resume: the run in {out} has a --budget, planned on the "
                                 "steps timed when it started: it cannot be continued; start it "
                                 "again with --overwrite.")
    return (out / "metrics.json").is_file()


def _difference(dest: str, recorded, given, source: str) -> str:
    flag = "IMAGES_DIR" if dest == "images" else f"--{dest.replace('_', '-')}"
    shown = {None: "(not given)"}
    return (f"{flag} {shown.get(recorded, recorded)}, not {shown.get(given, given)} "
            f"(from {source})")


def _identity(dest: str, value):
    """``value`` in the form two runs are compared in (paths resolved, weights parsed ...)."""
    from transferkit._validation import parse_duration
    from transferkit.cli._checks import parse_class_weight

    if value is None:
        return None
    if dest == "images" or (dest == "weights" and value.lower() not in ("imagenet", "none")):
        return str(Path(value).expanduser().resolve())
    if dest == "weights":
        return value.lower()
    if dest == "class_weight" and isinstance(value, str):
        return parse_class_weight(value)
    if dest == "budget":
        return parse_duration(value, "--budget")
    return value


def _finished(args) -> int:
    from transferkit.cli import EXIT_OK
    from transferkit.cli._checks import out_dir

    out = out_dir(args)
    print(f"Nothing to resume: the run in {out} finished (metrics.json); its model is "
          f"{out / 'model.keras'}.")
    return EXIT_OK


def write_run_config(out: Path, args) -> None:
    """Record the run's options in ``out/config.toml`` (atomically), as a config file takes them."""
    from transferkit import __version__
    from transferkit._atomic import atomic_write_text
    from transferkit.cli._parser import build_parser, verb_parser

    keys = {action.dest: key for key, action in
            config_actions(verb_parser(build_parser(), "train")).items()}
    weights = args.resolved_weights  # None, "imagenet" or a checked file
    values = {
        "images": str(Path(args.images).expanduser().resolve()),
        "weights": "none" if weights is None else weights if weights == "imagenet"
        else str(Path(weights).resolve()),
    }
    values.update({dest: getattr(args, dest) for dest in RUN_OPTIONS if dest not in values})
    path = out / RUN_CONFIG_FILE
    header = [f"{RUN_CONFIG_MARK[2:]} the options of the run in this folder "
              f"(transferkit {__version__}).",
              f"Repeat it:   transferkit train --config {path} --out NEW_FOLDER",
              f"Continue it: transferkit train --resume --out {out}",
              "Where outputs go (--out, --tensorboard) is not part of a run's options."]
    atomic_write_text(path, dumps_toml({keys[d]: values[d] for d in RUN_OPTIONS}, header))


def stage_state(out: Path) -> tuple[dict, dict[str, int]]:
    """The stages of a stopped run: ``({name: Run} of the finished, {name: epochs done} of the rest)``.

    A finished stage is loaded with its model (the next stage starts from it);
    an unfinished one continues from its backup.
    """
    from transferkit.runs.layout import HISTORY_FILE, RUN_FILE, read_history
    from transferkit.runs.record import Run

    finished, started = {}, {}
    for name in STAGES:
        if (out / name / RUN_FILE).is_file():
            finished[name] = Run.load(out / name)
        else:
            started[name] = len(read_history(out / name / HISTORY_FILE).get("loss", []))
    return finished, started


def check_tensorboard(folder: str | None) -> None:
    """``--tensorboard DIR``: a folder (or none yet), and what writes the logs installed.

    Keras' TensorBoard callback writes with ``tf.summary`` on every backend,
    which needs TensorFlow and the ``tensorboard`` package (TensorFlow 2.21 no
    longer installs it).
    """
    import importlib.util

    if folder is None:
        return
    if Path(folder).expanduser().exists() and not Path(folder).expanduser().is_dir():
        raise ConfigurationError(f"--tensorboard {folder} is a file, not a folder.")
    missing = [name for name in ("tensorflow", "tensorboard")
               if importlib.util.find_spec(name) is None]
    if missing:
        from transferkit.errors import MissingDependencyError

        raise MissingDependencyError(
            "--tensorboard writes its logs with TensorFlow's tf.summary (whatever the Keras "
            f"backend), which needs {' and '.join(missing)}: pip install {' '.join(missing)} "
            "(or transferkit[tensorboard]), or leave out --tensorboard.")
