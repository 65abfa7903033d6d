"""``--config FILE.toml``: a verb's options in a file, checked like its flags; TOML read and written.

Keys are the verb's flag names without the dashes (``head-epochs`` or
``head_epochs``; ``images`` for ``train``'s IMAGES_DIR), each value checked
against what the flag takes, so a typo or a wrong type stops the command
before TensorFlow loads, naming the key. Flags given on the command line
override the file. Python 3.11's :mod:`tomllib` reads it (``tomli`` on 3.10);
:func:`dumps_toml` writes the flat ``key = value`` form, which is all a
config needs.

Example ``run.toml``::

    images = "flowers/"
    backbone = "mobilenet_v2"
    image-size = 160
    head-epochs = 3
    epochs = 8
    seed = 1
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from transferkit.errors import ConfigurationError, DataNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, as a package
    import tomli as tomllib

RUN_CONFIG_FILE = "config.toml"
"""The file in a ``train`` run's folder that holds the run's options."""
RUN_CONFIG_MARK = "# transferkit train:"
"""The first line of that file: it tells a run's config.toml from anyone else's."""
PATHS = frozenset({"images", "out", "tensorboard", "weights", "data"})
"""Options that name a file or folder: relative in a file, they are relative to its folder."""
NOT_IN_CONFIG = frozenset({"help", "config", "verbosity", "debug"})
"""Destinations that no config file sets: the file itself, help, and how much is printed."""
DURATIONS = frozenset({"budget"})
"""String options that also take a number (seconds) in a file."""
TABLES = frozenset({"class_weight"})
"""String options that also take a table in a file (``class-weight = {cat = 2, dog = 1}``)."""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def read_toml(path: str | os.PathLike, what: str = "--config") -> dict:
    """The table in a TOML file; one clear error where it is missing or not TOML."""
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise DataNotFoundError(f"{what} {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is a folder, not a TOML file.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{what} {path} is not valid TOML: {exc}.") from None


def dumps_toml(values: Mapping[str, object], header: Iterable[str] = ()) -> str:
    """``values`` as flat TOML: one ``key = value`` line each; ``header`` lines as comments.

    Values are strings, ints, floats, bools, lists of those, or tables of
    those (written inline); None is left out (TOML has no null).

    Example:
        >>> print(dumps_toml({"images": "photos/", "epochs": 3, "lr": 1e-05, "tta": False,
        ...                   "batch-size": None, "class-weight": {"cat": 2.0}}), end="")
        images = "photos/"
        epochs = 3
        lr = 1e-05
        tta = false
        class-weight = {cat = 2.0}
    """
    lines = [f"# {line}".rstrip() for line in header]
    lines += [f"{_key(k)} = {_value(v, k)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key, key)


def _value(value: object, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # repr: the shortest text that reads back the same float,
        return repr(value)  # and TOML's inf, -inf and nan
    if isinstance(value, str):
        return _string(value, key)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, key) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(str(k))} = {_value(v, key)}" for k, v in value.items()) + "}"
    raise ConfigurationError(f"{key}: {type(value).__name__} values cannot be written to TOML.")


def _string(text: str, key: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8: TOML cannot hold it
        raise ConfigurationError(f"{key}: {text!r} is not UTF-8 text, which TOML needs.") from None
    # JSON's escapes are TOML's basic-string escapes; TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def config_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A verb's options a file may set, by key: the long flag without ``--`` (a positional: its dest)."""
    actions = {}
    for action in parser._actions:
        if action.dest in NOT_IN_CONFIG or action.dest == argparse.SUPPRESS:
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        actions[longs[0][2:] if longs else action.dest] = action
    return actions


def load_config(path: str | os.PathLike, parser: argparse.ArgumentParser, *,
                what: str = "--config") -> dict[str, object]:
    """The options a TOML file sets, by destination, each checked against its flag.

    Args:
        path: The TOML file.
        parser: The verb's parser (its options say what each key takes).
        what: How messages name the file (``--config``, or a run folder's config).

    Raises:
        ConfigurationError: For a key that is no option (close matches named),
            a value of the wrong type or out of the flag's choices, or a file
            that is not TOML; DataNotFoundError where it does not exist.
    """
    actions = config_actions(parser)
    table = read_toml(path, what)
    values = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-")
        if key not in actions:
            close = difflib.get_close_matches(key, list(actions), n=3)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigurationError(
                f"{what} {path}: unknown key {raw_key!r}{hint}; the keys are the options of "
                f"transferkit {parser.prog.split()[-1]}: {', '.join(actions)}.")
        action = actions[key]
        values[action.dest] = check_value(value, action, f"{what} {path}: {raw_key!r}")
    return _relative_to(values, Path(path).expanduser().parent)


def is_run_config(path: Path) -> bool:
    """Whether ``path`` is a config.toml that ``transferkit train`` wrote (its first line)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(RUN_CONFIG_MARK)
    except OSError:
        return False


def _relative_to(values: dict, base: Path) -> dict:
    """Relative paths in a file taken from the file's folder, so it works from anywhere."""
    for dest in PATHS & set(values):
        value = values[dest]
        if dest == "weights" and value.lower() in ("imagenet", "none"):
            continue
        values[dest] = str(base / Path(value).expanduser())  # absolute ones stay as they are
    return values


def check_value(value: object, action: argparse.Action, name: str) -> object:
    """``value`` as the flag of ``action`` would have given it; ``name`` heads the message."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be true or false, got {_shown(value)}.")
        return value
    if action.dest in TABLES and isinstance(value, dict):
        return _check_table(value, name)
    if action.dest in DURATIONS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{name} must be a whole number, got {_shown(value)}.")
    elif action.type is not None:  # a converter such as --image-size's ('auto' or a number)
        if isinstance(value, (bool, list, dict)):
            raise ConfigurationError(f"{name} must be one value, as on the command line, "
                                     f"got {_shown(value)}.")
        try:
            value = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise ConfigurationError(f"{name}: {exc}.") from None
    elif not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, got {_shown(value)}.")
    if action.choices is not None and value not in action.choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(map(str, action.choices))}, "
                                 f"got {_shown(value)}.")
    return value


def _check_table(table: dict, name: str) -> dict[str, float]:
    for key, weight in table.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise ConfigurationError(f"{name}: the weight of {key!r} must be a number, "
                                     f"got {_shown(weight)}.")
    return {str(k): float(v) for k, v in table.items()}


def _shown(value: object) -> str:
    kind = {str: "a string", bool: "a boolean", int: "a whole number", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)
    shown = json.dumps(value) if isinstance(value, (str, bool)) else repr(value)
    return f"{shown} ({kind})"
