"""Forgetting, as PEFT's method comparison defines it: the change in mean per-token cross-entropy on general
reference text when the adapter is enabled, against the same model with it disabled (positive: the adapter made
the model worse at ordinary text). The reference text is configured (config `forgetting.reference`):

    python-docs                     CPython's own documentation topics (pydoc_data.topics, shipped with every
                                    Python: the offline default; its checksum is recorded, as it differs by version)
    {path: file.txt}                a local text file; {path: file.jsonl, field: text} one document per line
    {hub: wikitext, name: wikitext-2-raw-v1, split: test, field: text, revision: <commit>}   a hub dataset
    {datasets: folder, split: test, field: text}                       a `datasets` folder (save_to_disk)

The first `tokens` tokens of the documents joined by blank lines are cut into `sequence_length`-token windows,
each scored on its own (no window sees another)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

BUILTIN = {"python-docs": "CPython's documentation topics (pydoc_data.topics), shipped with Python"}


class ReferenceError(ValueError):
    pass


def reference_text(spec: str | dict) -> tuple[str, dict]:
    """(the text, what it is: kind, name, sha256 of the text, documents) for a reference spec."""
    spec = {"builtin": spec} if isinstance(spec, str) else spec
    if "builtin" in spec:
        if spec["builtin"] not in BUILTIN:
            raise ReferenceError(f"costs.forgetting.reference: unknown {spec['builtin']!r}; valid: "
                                 f"{', '.join(BUILTIN)}")
        import platform
        from pydoc_data.topics import topics

        documents = [topics[k] for k in sorted(topics)]
        about = {"kind": "builtin", "name": f"{spec['builtin']} (Python {platform.python_version()})"}
    elif "path" in spec:
        documents = _file_documents(Path(spec["path"]), spec.get("field", "text"))
        about = {"kind": "file", "name": str(spec["path"])}
    elif "hub" in spec or "datasets" in spec:
        documents = _dataset_documents(spec)
        about = {"kind": "hub" if "hub" in spec else "datasets",
                 "name": spec.get("hub") or spec["datasets"], "revision": spec.get("revision")}
    else:
        raise ReferenceError(f"costs.forgetting.reference: give python-docs or one of path, hub, datasets "
                             f"(got {sorted(spec)})")
    documents = [d for d in documents if d and d.strip()]
    if not documents:
        raise ReferenceError(f"forgetting.reference: {about['name']} holds no text")
    text = "\n\n".join(documents)
    return text, {**about, "documents": len(documents), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _file_documents(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise ReferenceError(f"forgetting.reference.path: {path} does not exist")
    if path.suffix == ".jsonl":
        documents = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                record = json.loads(line)
                if field not in record:
                    raise ReferenceError(f"{path}:{i}: no field {field!r} (forgetting.reference.field)")
                documents.append(record[field])
        return documents
    return [path.read_text(encoding="utf-8")]


def _dataset_documents(spec: dict) -> list[str]:
    import datasets

    field = spec.get("field", "text")
    if "hub" in spec:
        data = datasets.load_dataset(spec["hub"], spec.get("name"), split=spec.get("split", "test"),
                                     revision=spec.get("revision"))
    else:
        data = datasets.load_from_disk(spec["datasets"])
        if isinstance(data, datasets.DatasetDict):
            data = data[spec.get("split", "test")]
    if field not in data.column_names:
        raise ReferenceError(f"forgetting.reference: {spec.get('hub') or spec['datasets']} has no column {field!r}; "
                             f"its columns: {', '.join(data.column_names)}")
    return list(data[field])


def windows(tokenizer, text: str, tokens: int, sequence_length: int) -> torch.Tensor:
    """[n, sequence_length] token ids: the text's first `tokens` tokens in windows, each led by BOS where the
    tokenizer has one (counted in the window, not scored)."""
    bos = tokenizer.bos_token_id
    body = sequence_length - (bos is not None)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
    n = len(ids) // body
    if n == 0:
        raise ReferenceError(f"forgetting: the reference text has {len(ids)} tokens, fewer than one window of "
                             f"{sequence_length}")
    rows = torch.tensor(ids[:n * body]).view(n, body)
    if bos is not None:
        rows = torch.cat([torch.full((n, 1), bos), rows], dim=1)
    return rows


@torch.inference_mode()
def cross_entropy(model, rows: torch.Tensor, batch_size: int = 8) -> float:
    """Mean per-token cross-entropy (nats) of predicting each window's tokens from the ones before."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size].to(device)
        logits = model(input_ids=batch).logits
        logits = logits[:, logits.size(1) - batch.size(1):-1].float()  # prompt tuning prepends virtual tokens' logits
        labels = batch[:, 1:]
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                         reduction="sum"))
        count += labels.numel()
    return total / count
