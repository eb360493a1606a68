"""Forgetting, as PEFT's method comparison defines it: the change in mean per-token cross-entropy on general
reference text when the adapter is enabled, against the same model with it disabled (positive: the adapter made
the model worse at ordinary text). The reference text is configured (config `costs.forgetting.reference`):

    python-docs                     CPython's own documentation topics (pydoc_data.topics, shipped with every
                                    Python: the offline default; its checksum is recorded, as it differs by version),
                                    in a seeded order, so a run reads across the topics rather than the first two
    {path: file.txt}                a local text file; {path: file.jsonl, field: text} one document per line
    {hub: wikitext, name: wikitext-2-raw-v1, split: test, field: text, revision: <commit>}   a hub dataset
    {hub: HuggingFaceFW/finewiki, split: train, field: text, documents: 100, streaming: true}   PEFT's sample: the
                                    first 100 documents of the stream
    {datasets: folder, split: test, field: text}                       a `datasets` folder (save_to_disk)

`documents: N` keeps the first N documents. Two ways to score them (`costs.forgetting.scoring`):

    windows     each document cut into `sequence_length`-token windows, the windows taken round-robin across the
                documents (the first window of every document, then the second ...) until `tokens` tokens: a
                measurement spread over many documents; every window scored on its own
    documents   each document on its own, truncated to `sequence_length` tokens, as PEFT's benchmark scores its
                Wikipedia sample (768 tokens each); `tokens` is not used

Every window's (document's) own mean is kept, so the forgetting has an interval over them and two fine-tunes of a
model, scored on the same windows, compare window by window."""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import torch

BUILTIN = {"python-docs": "CPython's documentation topics (pydoc_data.topics), shipped with Python"}
ORDER_SEED = 0  # the builtin reference's topics, shuffled once: the windows come from across them


class ReferenceError(ValueError):
    pass


def reference_documents(spec: str | dict) -> tuple[list[str], dict]:
    """(the documents, what they are: kind, name, sha256 of their text, documents) for a reference spec."""
    spec = {"builtin": spec} if isinstance(spec, str) else spec
    if "builtin" in spec:
        if spec["builtin"] not in BUILTIN:
            raise ReferenceError(f"costs.forgetting.reference: unknown {spec['builtin']!r}; valid: "
                                 f"{', '.join(BUILTIN)}")
        import platform
        from pydoc_data.topics import topics

        keys = sorted(topics)
        random.Random(ORDER_SEED).shuffle(keys)
        documents = [topics[k] for k in keys]
        about = {"kind": "builtin", "name": f"{spec['builtin']} (Python {platform.python_version()})",
                 "order": f"topics shuffled with seed {ORDER_SEED}"}
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
    documents = [d for d in documents if d and d.strip()][:spec.get("documents") or None]
    if not documents:
        raise ReferenceError(f"forgetting.reference: {about['name']} holds no text")
    digest = hashlib.sha256("\n\n".join(documents).encode()).hexdigest()
    return documents, {**about, "documents": len(documents), "sha256": digest}


def reference_text(spec: str | dict) -> tuple[str, dict]:
    """The documents joined by blank lines (one text), and what they are."""
    documents, about = reference_documents(spec)
    return "\n\n".join(documents), about


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
    if "hub" in spec and spec.get("streaming"):  # the first documents without the whole split (PEFT's way)
        stream = datasets.load_dataset(spec["hub"], spec.get("name"), split=spec.get("split", "test"),
                                       revision=spec.get("revision"), streaming=True)
        rows = list(stream.take(spec.get("documents") or 100))
        if rows and field not in rows[0]:
            raise ReferenceError(f"forgetting.reference: {spec['hub']} has no column {field!r}; its columns: "
                                 f"{', '.join(rows[0])}")
        return [r[field] for r in rows]
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


def windows(tokenizer, documents: list[str] | str, tokens: int, sequence_length: int) -> torch.Tensor:
    """[n, sequence_length] token ids: each document's consecutive windows, taken round-robin across the documents
    until `tokens` tokens, each led by BOS where the tokenizer has one (counted in the window, not scored)."""
    documents = [documents] if isinstance(documents, str) else documents
    bos = tokenizer.bos_token_id
    body = sequence_length - (bos is not None)
    per_document = []
    for ids in tokenizer(documents, add_special_tokens=False)["input_ids"]:
        per_document.append([ids[i:i + body] for i in range(0, len(ids) - body + 1, body)])
    wanted, rows = max(1, tokens // body), []
    for depth in range(max((len(w) for w in per_document), default=0)):
        rows += [w[depth] for w in per_document if depth < len(w)]
        if len(rows) >= wanted:
            break
    rows = rows[:wanted]
    if not rows:
        raise ReferenceError(f"forgetting: the reference text has no document of at least one window of "
                             f"{sequence_length} tokens")
    rows = torch.tensor(rows)
    if bos is not None:
        rows = torch.cat([torch.full((len(rows), 1), bos), rows], dim=1)
    return rows


def document_rows(tokenizer, documents: list[str], sequence_length: int) -> list[torch.Tensor]:
    """Each document on its own, truncated to `sequence_length` tokens (BOS as the tokenizer adds it)."""
    encoded = tokenizer(documents, truncation=True, max_length=sequence_length)["input_ids"]
    return [torch.tensor(ids) for ids in encoded if len(ids) > 1]


@torch.inference_mode()
def cross_entropy(model, rows, batch_size: int = 8) -> list[tuple[float, int]]:
    """Per row (a window, or a document): (summed cross-entropy in nats of predicting each token from the ones
    before, tokens scored). Rows of unequal length are right-padded and masked."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    rows = list(rows)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(r) for r in chunk)
        batch = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for i, r in enumerate(chunk):
            batch[i, :len(r)], mask[i, :len(r)] = r, 1
        batch, mask = batch.to(device), mask.to(device)
        logits = model(input_ids=batch, attention_mask=mask).logits
        logits = logits[:, logits.size(1) - batch.size(1):-1].float()  # prompt tuning prepends virtual tokens' logits
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch[:, 1:], reduction="none")
        scored = mask[:, 1:].float()
        out += [(float((losses[i] * scored[i]).sum()), int(scored[i].sum())) for i in range(len(chunk))]
    return out


def mean(scores: list[tuple[float, int]]) -> float:
    """The mean per-token cross-entropy over rows: summed loss over summed tokens."""
    return sum(s for s, _ in scores) / sum(n for _, n in scores)


def bootstrap_difference(a: list[tuple[float, int]], b: list[tuple[float, int]], n_boot: int = 2000,
                         seed: int = 0) -> tuple[float, float]:
    """95% interval of mean(a) - mean(b) over the same rows (windows paired), rows redrawn with replacement."""
    import numpy as np

    la, na = np.array([s for s, _ in a]), np.array([n for _, n in a], dtype=float)
    lb, nb = np.array([s for s, _ in b]), np.array([n for _, n in b], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_boot, len(a)))
    diffs = la[idx].sum(1) / na[idx].sum(1) - lb[idx].sum(1) / nb[idx].sum(1)
    return float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))
