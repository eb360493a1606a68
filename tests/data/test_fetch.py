"""The download path of fetch_data against a local server with raw GitHub's layout: a verified download, and
the three ways it fails (checksum mismatch, 404, refused connection), each saying what to do."""
import dataclasses
import socket

import pytest

from pipeline_lib.catalog.datasets import SOURCES
from pipeline_lib.data.fetch import FetchError, fetch
from pipeline_lib.runtime.files import sha256_file

GSM8K = SOURCES["dataset/gsm8k/test.json"]


def test_download_from_the_configured_base_url_is_verified(upstream_server, tmp_path):
    dest = fetch(GSM8K, tmp_path / "gsm8k.json", base_url=upstream_server)
    assert sha256_file(dest) == GSM8K.sha256
    train = SOURCES["grade_school_math/data/train.jsonl"]
    assert sha256_file(fetch(train, tmp_path / "train.jsonl", base_url=upstream_server + "/")) == train.sha256


def test_a_checksum_mismatch_leaves_nothing_and_names_the_pinned_version(upstream_server, tmp_path):
    other = dataclasses.replace(GSM8K, sha256="0" * 64)
    with pytest.raises(FetchError, match=r"sha256 mismatch for http://127\.0\.0\.1:\d+/AGI-Edgerunners/LLM-Adapters/"
                                         r"8166.*expected 0{64}, got 2cc6.* not the pinned version \(commit 8166"):
        fetch(other, tmp_path / "gsm8k.json", base_url=upstream_server)
    assert not list(tmp_path.iterdir())


def test_a_missing_file_says_http_404_and_what_to_check(upstream_server, tmp_path):
    missing = dataclasses.replace(GSM8K, path="dataset/no-such-set/test.json")
    with pytest.raises(FetchError, match=r"HTTP 404 .* check `data.base_url`, or set `data.mirror`"):
        fetch(missing, tmp_path / "x.json", base_url=upstream_server)
    assert not list(tmp_path.iterdir())


def test_a_refused_connection_says_what_to_do(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match=r"download from http://127\.0\.0\.1:\d+/.* failed \(.*refused.*\); check "
                                         r"the network and `data.base_url`, or set `data.mirror`"):
        fetch(GSM8K, tmp_path / "x.json", base_url=f"http://127.0.0.1:{port}")
    assert not list(tmp_path.iterdir())
