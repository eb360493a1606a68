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
