"""Help text a newcomer reads: quick to come, plain words, wrapped at spaces, defaults shown."""

import argparse
import os
import re
import subprocess
import sys

import pytest

from transferkit.cli._help import plain_text
from transferkit.cli._parser import build_parser, experiment_parser
from transferkit.experiments import EXPERIMENTS, describe, load
from transferkit.models.registry import BACKBONES


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def _every_help(monkeypatch, columns: int) -> dict[str, str]:
    """The --help text of the top level, every command and every experiment."""
    monkeypatch.setenv("COLUMNS", str(columns))  # argparse sizes its help from this
    parser = build_parser()
    texts = {"transferkit": parser.format_help()}
    texts |= {name: sub.format_help() for name, sub in _subparsers(parser).items()}
    texts |= {f"run {name}": experiment_parser(name).format_help() for name in EXPERIMENTS}
    return texts


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_run_name_help_never_imports_tensorflow_and_shows_no_markup(name):
    # sys.modules, not -X importtime: the CLI hides TensorFlow's import output, timings included
    code = ("import sys\nfrom transferkit.cli import main\n"
            f"try:\n    main(['run', {name!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY' if {'tensorflow', 'keras'} & set(sys.modules) else 'LIGHT')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "LIGHT"
    assert f"usage: transferkit run {name}" in done.stdout and "--quick" in done.stdout
    assert not re.search(r":\w+:`|``", done.stdout)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_options_read_without_import_match_the_module(name):
    light, real = argparse.ArgumentParser(), argparse.ArgumentParser()
    doc, add_arguments = describe(name)
    add_arguments(light)
    module = load(name)
    module.add_arguments(real)

    def options(parser):
        return [(a.option_strings, a.dest, a.default, a.type, a.choices, a.help)
                for a in parser._actions]

    assert options(light) == options(real)
    assert doc == module.__doc__.strip()


def test_sphinx_markup_becomes_plain_text():
    text = ("with :func:`~transferkit.training.recipes.fine_tune`'s recipe, a "
            ":class:`~transferkit.data.DataSplits`, :func:`transferkit.train`, "
            ":doc:`own-images`, ``--weights none`` and :ref:`the results <results>`")
    assert plain_text(text) == ("with fine_tune()'s recipe, a DataSplits, transferkit.train(), "
                                "own-images, --weights none and the results")


@pytest.mark.parametrize("columns", [80, 60])
def test_help_fits_the_terminal_and_never_splits_a_word(monkeypatch, columns):
    for name, text in _every_help(monkeypatch, columns).items():
        lines = text.splitlines()
        assert max(map(len, lines)) <= columns, (name, max(lines, key=len))
        joined = re.sub(r"\n\s*", "", text)  # a word split across lines is whole again here
        for backbone in BACKBONES:
            assert joined.count(backbone) == text.count(backbone), (name, backbone)
        assert not [line for line in lines if re.search(r"\w-$", line)], name  # hyphen breaks


def test_descriptions_are_wrapped_paragraphs(monkeypatch):
    texts = _every_help(monkeypatch, 80)
    run = texts["run"]
    assert "Run a documented experiment on CIFAR-10. Each writes" in run
    assert "transfer_vs_baseline" in run and "mobilenetv2_frozen" in run
    liltinynet = texts["run liltinynet"]
    assert "\n1. Base model:" in liltinynet and "\n2. Fine-tuner:" in liltinynet


def test_every_option_has_help_and_quickstart_shows_its_defaults(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            assert action.help, (name, action.option_strings)
    quickstart = _subparsers(build_parser())["quickstart"]
    formatter = quickstart._get_formatter()
    for action in quickstart._actions:
        if action.default not in (None, False, argparse.SUPPRESS):
            assert str(action.default) in formatter._expand_help(action), action.option_strings
