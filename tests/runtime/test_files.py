import json
import os

import pytest

from pipeline_lib.runtime.files import atomic_path, read_jsonl, sha256_file, write_json, write_jsonl


def test_atomic_file_appears_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'


def test_atomic_directory_replaces_old_one_only_on_success(tmp_path):
    target = tmp_path / "adapter"
    with atomic_path(target, directory=True) as tmp:
        (tmp / "w").write_text("v1")
    with pytest.raises(KeyError):
        with atomic_path(target, directory=True) as tmp:
            (tmp / "w").write_text("v2")
            raise KeyError
    assert (target / "w").read_text() == "v1"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_artifacts_get_the_mode_of_a_plain_write_not_a_private_one(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "score.json", {})
        with atomic_path(tmp_path / "adapter", directory=True) as tmp:
            (tmp / "w").write_text("v")
        (tmp_path / "plain").write_text("")
    finally:
        os.umask(old)
    assert (tmp_path / "score.json").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "adapter").stat().st_mode & 0o777 == 0o755


def test_jsonl_round_trip_and_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    write_jsonl(path, [{"a": 1}, {"b": "é"}])
    assert read_jsonl(path) == [{"a": 1}, {"b": "é"}]
    path.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"x.jsonl:2"):
        read_jsonl(path)


def test_sha256(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_a_dead_writers_temporaries_go_and_a_live_ones_stay(tmp_path):
    """A killed job leaves `.name.<host>-<pid>.*.tmp`; the next write of the same artifact removes it if that process
    is gone from this host, and leaves a live process's (and another host's) alone."""
    import socket
    import subprocess
    import sys

    from pipeline_lib.runtime.files import atomic_path, remove_stale_temporaries

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    host = socket.gethostname()
    final = tmp_path / "adapter"
    stale = tmp_path / f".adapter.{host}-{dead}.abc123.tmp"
    stale.mkdir()
    (stale / "weights.bin").write_bytes(b"x" * 1000)
    live = tmp_path / f".adapter.{host}-{os.getpid()}.def456.tmp"
    live.mkdir()
    elsewhere = tmp_path / ".adapter.other-host-1.ghi789.tmp"
    elsewhere.write_text("")
    with atomic_path(final, directory=True) as tmp:
        (tmp / "done").write_text("ok")
    assert not stale.exists() and live.exists() and elsewhere.exists() and (final / "done").read_text() == "ok"
    assert remove_stale_temporaries(final) == []


def test_content_is_flushed_before_the_rename(tmp_path, monkeypatch):
    from pipeline_lib.runtime import files

    order = []
    monkeypatch.setattr(files.os, "fsync", lambda fd: order.append("fsync"))
    real_replace = files.os.replace
    monkeypatch.setattr(files.os, "replace", lambda a, b: (order.append("rename"), real_replace(a, b)))
    files.write_text(tmp_path / "a.txt", "content")
    assert order[:2] == ["fsync", "rename"] and order[-1] == "fsync"  # the file, the rename, its directory


def test_json_lines_end_at_newlines_only(tmp_path):
    """A JSON string may hold U+2028, U+0085 or a form feed raw (ensure_ascii=False writes them so): a reader that
    split at every Unicode line boundary would cut the record in two (gsm8k_train.jsonl's line 2382 holds one)."""
    from pipeline_lib.runtime.files import parse_jsonl

    records = [{"text": "a\u2028b\x85c\x0cd"}, {"text": "e"}]
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8")
    assert read_jsonl(path) == records
    assert parse_jsonl(path.read_text(encoding="utf-8"), path) == records
    with pytest.raises(KeyError, match=r"x.jsonl:2: invalid JSON line"):
        parse_jsonl('{"a": 1}\n{"b": ', path, KeyError)
