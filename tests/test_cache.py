"""The on-disk feature store (transferkit._cache): hits, damage, races, the cap, a read-only folder."""

import logging
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import ROOT

from transferkit._cache import (
    DEFAULT_MAX_BYTES,
    FeatureStore,
    cache_root,
    max_bytes_from_environment,
    parse_size,
    read_entry,
)
from transferkit.errors import ConfigurationError

KEY = "0123456789abcdef0123456789abcdef"


def _key(i: int) -> str:
    return f"{i:032x}"


@pytest.fixture
def store(tmp_path):
    return FeatureStore(tmp_path / "cache")


def test_a_hit_returns_the_same_array(store):
    array = np.random.default_rng(0).normal(size=(50, 7, 7, 3)).astype(np.float16)
    assert store.get(KEY) is None
    assert store.put(KEY, array)
    again = store.get(KEY)
    assert again.dtype == array.dtype and again.shape == array.shape
    np.testing.assert_array_equal(again, array)
    again[0] = 0  # a writable copy, not a view of anything shared
    assert np.load(store.path(KEY)).shape == array.shape  # numpy reads an entry as it is


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "append", "empty"])
def test_a_torn_or_damaged_entry_is_a_miss_and_removed(store, damage, caplog):
    array = np.arange(1000, dtype=np.float32).reshape(100, 10)
    store.put(KEY, array)
    path = store.path(KEY)
    data = bytearray(path.read_bytes())
    if damage == "truncate":  # a write killed halfway, had it not been atomic
        data = data[: len(data) // 2]
    elif damage == "flip_byte":
        data[len(data) // 2] ^= 0xFF
    elif damage == "append":
        data += b"\0" * 8
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="transferkit"):
        assert store.get(KEY) is None
    assert not path.exists() and "damaged feature-cache entry" in caplog.text
    assert store.put(KEY, array)  # recomputed and stored again
    np.testing.assert_array_equal(store.get(KEY), array)


def test_keys_are_checked(store):
    with pytest.raises(ConfigurationError, match="hex"):
        store.get("../../etc/passwd")


def test_two_processes_writing_one_key_leave_a_whole_entry(tmp_path):
    root = tmp_path / "cache"
    writer = textwrap.dedent(f"""
        import sys, numpy as np
        from transferkit._cache import FeatureStore
        store = FeatureStore({str(root)!r})
        array = np.full((2000, 64), float(sys.argv[1]), np.float32)
        for _ in range(20):
            assert store.put({KEY!r}, array)
            got = store.get({KEY!r})
            assert got is not None and got.shape == (2000, 64), got
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(v)], env=env,
                              stderr=subprocess.PIPE, text=True) for v in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    got = read_entry(FeatureStore(root).path(KEY))  # checked: size and CRC
    assert got.shape == (2000, 64) and len(np.unique(got)) == 1 and got[0, 0] in (1.0, 2.0)
    assert sorted(os.listdir(root / "features-v1")) == [f"{KEY}.npy"]  # no temporary left


def test_least_recently_used_entries_go_under_the_cap(tmp_path):
    array = np.zeros(1000, np.float32)
    store = FeatureStore(tmp_path, max_bytes=10**9)
    for i in range(3):
        store.put(_key(i), array)
        past = time.time() - 100 + i  # 0 oldest, 2 newest
        os.utime(store.path(_key(i)), (past, past))
    entry = store.info().total_bytes // 3
    store.max_bytes = 3 * entry
    assert store.get(_key(0)) is not None  # a read makes entry 0 the most recent
    store.put(_key(3), array)
    assert [store.get(_key(i)) is not None for i in range(4)] == [True, False, True, True]
    info = store.info()
    assert info.entries == 3 and info.total_bytes == 3 * entry
    assert store.evict(entry) == 2 * entry and store.info().entries == 1


def test_an_array_over_the_cap_is_not_stored(tmp_path):
    store = FeatureStore(tmp_path, max_bytes=100)
    assert not store.put(KEY, np.zeros(1000, np.uint8)) and store.info().entries == 0


def test_clear_removes_entries_and_leftover_temporaries(store):
    for i in range(3):
        store.put(_key(i), np.zeros(256, np.uint8))
    leftover = store.folder / f".{KEY}.npy.abc123.tmp"  # a killed write's temporary file
    leftover.write_bytes(b"x" * 10)
    (store.folder / "notes.txt").write_text("not ours")
    assert store.get(KEY) is None and store.info().entries == 3  # a temporary is never read
    entry = os.path.getsize(store.path(_key(0)))
    assert store.clear() == (3, 3 * entry + 10)
    assert sorted(os.listdir(store.folder)) == ["notes.txt"]


def test_stale_temporaries_go_on_eviction_recent_ones_stay(store):
    store.put(KEY, np.zeros(8, np.uint8))
    old, new = store.folder / ".a.npy.1.tmp", store.folder / ".b.npy.2.tmp"
    old.write_bytes(b"1"), new.write_bytes(b"2")
    os.utime(old, (time.time() - 7200,) * 2)
    store.evict()
    assert not old.exists() and new.exists()


def test_an_unwritable_folder_warns_once_and_runs_without(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = FeatureStore(blocker / "cache")
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        assert not store.put(KEY, np.zeros(4))
        assert not FeatureStore(blocker / "cache").put(_key(1), np.zeros(4))
        assert store.get(KEY) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot be written" in warnings[0].getMessage()
    assert store.info().entries == 0 and store.clear() == (0, 0)


def test_location_and_cap_from_the_environment(monkeypatch, tmp_path):
    for off in ("off", "0", "OFF", "false"):
        assert cache_root({"TRANSFERKIT_CACHE": off}) is None
    assert cache_root({"TRANSFERKIT_CACHE": str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "transferkit"
    assert cache_root({}).parts[-2:] == (".cache", "transferkit")
    monkeypatch.setattr(sys, "platform", "win32")
    assert cache_root({"LOCALAPPDATA": str(tmp_path)}) == tmp_path / "transferkit"
    monkeypatch.setenv("TRANSFERKIT_CACHE", "off")
    assert FeatureStore.from_environment() is None
    monkeypatch.delenv("TRANSFERKIT_CACHE_MAX", raising=False)
    assert max_bytes_from_environment() == DEFAULT_MAX_BYTES
    monkeypatch.setenv("TRANSFERKIT_CACHE_MAX", "2GiB")
    assert max_bytes_from_environment() == 2 * 2**30


@pytest.mark.parametrize("text", ["", "ten", "10 XB", "-1", "1e9"])
def test_a_bad_size_is_a_configuration_error(text):
    with pytest.raises(ConfigurationError, match="cache size"):
        parse_size(text)
