"""The documented experiments, runnable as ``transferkit run NAME`` or ``examples/NAME.py``.

Each module is a complete, readable recipe built from the public API, with
``add_arguments(parser)`` and a ``run(args)`` that returns the metrics it
writes to ``--out/metrics.json``. Modules load on demand, so listing them
does not start TensorFlow, and :func:`describe` reads a module's docstring and
options without importing it (``transferkit run NAME --help``).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType

from transferkit.errors import unknown_name
from transferkit.experiments import _options
from transferkit.experiments._options import common_options_help  # argparse only: no Keras

#: Experiment name -> one-line summary, in the order of EXPERIMENTS.md.
EXPERIMENTS: dict[str, str] = {
    "transfer_vs_baseline": "frozen MobileNetV2 vs a CNN from scratch; learning curves, feature maps",
    "mobilenetv2_frozen": "the minimal recipe: frozen MobileNetV2 + Dense(128)/Dropout(0.3), "
                          "report, saved model (--native-32px: the naive 32x32 input beside it)",
    "two_stage": "CNN on 7 classes, its frozen conv block transferred to the other 3, vs scratch",
    "liltinynet": "MobileNetV2 base with LR schedule, early stopping, checkpoints; "
                  "fine-tuner; evaluator",
    "backbones": "several pretrained backbones, frozen and fine-tuned, vs scratch; report and slides",
}


def load(name: str) -> ModuleType:
    """The module of experiment ``name``.

    Raises:
        UnknownNameError: For an unknown name, listing the valid ones.
    """
    if name not in EXPERIMENTS:
        raise unknown_name("experiment", name, EXPERIMENTS)
    return importlib.import_module(f"transferkit.experiments.{name}")


def describe(name: str) -> tuple[str, Callable[[argparse.ArgumentParser], None]]:
    """The docstring and ``add_arguments`` of experiment ``name``, without importing it.

    An experiment module imports Keras at its top, which takes seconds; its
    help needs neither. So the module's source is parsed: the docstring is
    read, and ``add_arguments`` is compiled with the module constants it reads,
    its ``c`` being the Keras-free ``_options`` (``add_common_arguments``,
    ``Budget``, ``unfreeze_arg``), as in ``_common``. tests/cli/test_help.py
    checks that the result matches the imported module's.

    Raises:
        UnknownNameError: For an unknown name, listing the valid ones.
    """
    if name not in EXPERIMENTS:
        raise unknown_name("experiment", name, EXPERIMENTS)
    spec = importlib.util.find_spec(f"transferkit.experiments.{name}")
    tree = ast.parse(spec.loader.get_source(spec.name), spec.origin)
    function = next(node for node in tree.body
                    if isinstance(node, ast.FunctionDef) and node.name == "add_arguments")
    body = [*_constants_used(tree, function), function]
    namespace = {"argparse": argparse, "c": _options}
    exec(compile(ast.Module(body, type_ignores=[]), spec.origin, "exec"), namespace)  # noqa: S102 - the package's own source
    return ast.get_docstring(tree) or "", namespace["add_arguments"]


def _constants_used(tree: ast.Module, function: ast.FunctionDef) -> list[ast.Assign]:
    """The module-level assignments ``function`` reads, with those they read, in order."""
    assigns = [node for node in tree.body if isinstance(node, ast.Assign)]
    wanted = _names_read(function)
    kept: list[ast.Assign] = []
    while True:
        more = [a for a in assigns if a not in kept and _names_assigned(a) & wanted]
        if not more:
            return [a for a in assigns if a in kept]
        kept += more
        for assign in more:
            wanted |= _names_read(assign.value)


def _names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _names_assigned(assign: ast.Assign) -> set[str]:
    return {n.id for target in assign.targets for n in ast.walk(target) if isinstance(n, ast.Name)}


__all__ = ["EXPERIMENTS", "common_options_help", "describe", "load"]
