"""The options every experiment takes, defined without importing Keras (fast ``--help``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Images per class (train+val and test) and epochs of one mode."""

    per_class: int | None
    epochs: int


def add_common_arguments(parser: argparse.ArgumentParser, name: str, *, full: Budget,
                         quick: Budget) -> None:
    """Add the options every experiment shares."""
    per_class = "all" if full.per_class is None else full.per_class
    parser.add_argument("--data", help="CIFAR-10 file or folder (default: TRANSFERKIT_DATA, "
                        "the Keras cache, then a download)")
    parser.add_argument("--out", default=f"runs/{name}", help=f"output folder (default: runs/{name})")
    parser.add_argument("--epochs", type=int, help=f"epochs (default {full.epochs}; "
                        f"{quick.epochs} with --quick)")
    parser.add_argument("--per-class", type=int, help=f"images per class in train+val and in "
                        f"test (default {per_class}; {quick.per_class} with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data choice, weights, "
                        "shuffling and dropout (default 0)")
    parser.add_argument("--budget", metavar="TIME",
                        help="time for the whole experiment, e.g. 600, 90s, 10m, 1h: each "
                        "training run takes an equal share of what is left when it starts "
                        "(time a run leaves unused goes to the next) and plans its steps to end "
                        "on time; --epochs stays the most a run trains")
    parser.add_argument("--quick", action="store_true",
                        help="a small real subset and a few epochs: checks the pipeline, not the figures")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' (Keras cache or download), 'none' (random "
                        "initialisation), a weights file path, or NAME=FILE[,NAME=FILE] "
                        "per backbone (a file is used for the network it belongs to)")
    parser.set_defaults(full_budget=full, quick_budget=quick)


def common_options_help(formatter_class: type[argparse.HelpFormatter] = argparse.HelpFormatter,
                        ) -> str:
    """The shared options as ``--help`` prints them (for ``transferkit run --help``)."""
    parser = argparse.ArgumentParser(prog="transferkit run NAME", add_help=False,
                                     formatter_class=formatter_class)
    add_common_arguments(parser, "NAME", full=Budget(None, 0), quick=Budget(0, 0))
    for action in parser._actions:
        if action.dest in ("epochs", "per_class"):  # their defaults differ per experiment
            action.help = action.help.split(" (default")[0] + " (default: per experiment)"
    text = parser.format_help()
    return text[text.index("options:") + len("options:\n"):].rstrip()


def unfreeze_arg(value: str) -> str | int:
    """``--unfreeze``: ``auto``, ``all`` or a layer count."""
    if value.lower() in ("auto", "all"):
        return value.lower()
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', 'all' or a number of layers, got {value!r}") from None


def check_options(args: argparse.Namespace) -> None:
    """The shared options' cheap checks, before Keras loads: counts, --data, --weights files.

    Raises:
        ConfigurationError: For --epochs or --per-class below 1, an unreadable
            --budget (kept in seconds), or a file that is not a Keras weights file.
        DataNotFoundError: For a --data path that does not exist.
        WeightsNotFoundError: For a --weights file that does not exist.
        UnknownNameError: For an unknown backbone in NAME=FILE.
    """
    from pathlib import Path

    from transferkit._validation import parse_duration
    from transferkit.errors import ConfigurationError, DataNotFoundError
    from transferkit.models.files import check_weights_arg
    from transferkit.models.registry import get_backbone_spec

    for name in ("epochs", "per_class"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be 1 or more, got {value}.")
    if args.budget is not None:
        args.budget = parse_duration(args.budget, "--budget")
    if args.data is not None and not Path(args.data).expanduser().exists():
        raise DataNotFoundError(f"Data path {args.data!r} does not exist.")
    if args.weights.lower() in ("imagenet", "none"):
        return
    if "=" not in args.weights:  # one file
        check_weights_arg(args.weights)
        return
    for item in filter(None, (part.strip() for part in args.weights.split(","))):
        name, _, path = item.partition("=")  # as _common.weights reads it
        get_backbone_spec(name.strip())
        check_weights_arg(path.strip())


def budget(args: argparse.Namespace) -> Budget:
    """The budget the options ask for: the mode's defaults, overridden by explicit values."""
    base = args.quick_budget if args.quick else args.full_budget
    return Budget(args.per_class if args.per_class is not None else base.per_class,
                  args.epochs if args.epochs is not None else base.epochs)
