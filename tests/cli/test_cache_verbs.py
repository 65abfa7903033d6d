"""``transferkit cache info`` / ``cache clear``: what they print, and that they stay light."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from transferkit._cache import FeatureStore
from transferkit._progress import format_size
from transferkit.cli import main


def _fill(root, n=2):
    store = FeatureStore(root)
    for i in range(n):
        store.put(f"{i:032x}", np.zeros((100, 100), np.float32))
    return store.info().total_bytes


def test_info_and_clear_say_where_how_much_and_what_was_freed(feature_cache, capsys,
                                                              monkeypatch):
    total = _fill(feature_cache)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"Feature cache: {feature_cache}\n" in out
    assert f"Holds 2 entries, {format_size(total)} of a 10.0 GB cap" in out
    monkeypatch.setenv("TRANSFERKIT_CACHE_MAX", "500MB")
    assert main(["cache", "info"]) == 0 and "of a 500 MB cap\n" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == (f"Cleared the feature cache at {feature_cache}: "
                                       f"2 entries removed, {format_size(total)} freed.\n")
    assert FeatureStore(feature_cache).info().entries == 0
    assert main(["info"]) == 0 and f"{feature_cache} (0 entries" in capsys.readouterr().out


def test_off_and_a_bad_cap_are_answered_plainly(monkeypatch, capsys):
    monkeypatch.setenv("TRANSFERKIT_CACHE", "off")
    assert main(["cache", "info"]) == 0 and "off" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0 and "nothing to clear" in capsys.readouterr().out
    monkeypatch.setenv("TRANSFERKIT_CACHE", "/tmp/somewhere")
    monkeypatch.setenv("TRANSFERKIT_CACHE_MAX", "lots")
    assert main(["cache", "info"]) == 2
    assert "cache size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # an action is required: argparse's usage error
        main(["cache"])
    assert exit_.value.code == 2


def test_cache_verbs_never_import_tensorflow(tmp_path):
    _fill(tmp_path)
    code = ("import sys\nfrom transferkit.cli import main\n"
            "assert main(['cache', 'info']) == 0 and main(['cache', 'clear']) == 0\n"
            "print('HEAVY' if {'tensorflow', 'keras'} & set(sys.modules) else 'LIGHT')\n")
    env = {**os.environ, "TRANSFERKIT_CACHE": str(tmp_path),
           "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LIGHT" and "2 entries removed" in done.stdout


def test_cache_without_an_action_names_the_actions(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["cache"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "required: {info,clear}" in err and "Traceback" not in err
