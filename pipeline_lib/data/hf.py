"""Datasets read through the `datasets` library (config `datasets:` entries with `format: hf`): from the Hugging
Face Hub at a pinned commit, or from a local parquet/json/jsonl/csv file or `save_to_disk` folder, with the
library's cache. Each row's columns are mapped onto instruction/input/output/answer, the gold answer read from a
column or from the output by a named rule, and every item is validated as the built-in loaders validate theirs.
What was loaded (the hub commit, or the sha256 of every local file) is recorded beside the normalized items."""
from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline_lib.catalog.datasets import DatasetSpec
from pipeline_lib.data.loaders import DataError, field_of, gold_answer, normalized_record
from pipeline_lib.runtime.files import sha256_file, write_json, write_jsonl


def _answer_is(text: str) -> str | None:
    """MetaMathQA's "The answer is: 18" (the last such statement)."""
    found = re.findall(r"answer is:?\s*(.+?)\s*$", text.strip(), flags=re.I | re.M)
    return found[-1].rstrip(".") if found else None


def _gsm8k(text: str) -> str | None:
    return text.rsplit("####", 1)[1].strip() if "####" in text else None


def _last_number(text: str) -> str | None:
    found = re.findall(r"-?\d[\d,]*\.?\d*", text)
    return found[-1].replace(",", "").rstrip(".") if found else None


ANSWER_RULES = {"answer_is": _answer_is, "gsm8k": _gsm8k, "last_number": _last_number}
LOCAL_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def _where(entry: dict) -> str:
    if "hub" in entry:
        return f"{entry['hub']}@{entry['revision']}" + (f" ({entry['config']})" if entry.get("config") else "")
    return entry["path"]


def open_dataset(name: str, entry: dict):
    """The rows of the dataset's split, as a `datasets.Dataset`; a clear error when it cannot be had."""
    import datasets

    split = entry.get("hf_split", "train")
    try:
        if "hub" in entry:
            return datasets.load_dataset(entry["hub"], entry.get("config"), revision=entry["revision"], split=split)
        path = Path(entry["path"])
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
            return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        if split != "train":
            raise DataError(f"datasets.{name}: cannot load {path} split {split!r}: a single file holds one split, "
                            f"'train' (a save_to_disk folder can hold several)")
        if path.suffix not in LOCAL_BUILDERS:
            raise DataError(f"datasets.{name}: {path}: expected a {'/'.join(LOCAL_BUILDERS)} file or a save_to_disk "
                            f"folder")
        return datasets.load_dataset(LOCAL_BUILDERS[path.suffix], data_files=str(path), split="train")
    except DataError:
        raise
    except Exception as e:  # the library's own errors: missing file, split, config, cache, network
        offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
        hint = (f"offline (HF_HUB_OFFLINE=1) the dataset must already be in the datasets cache "
                f"({datasets.config.HF_DATASETS_CACHE}): load it once with network access, same revision"
                if offline and "hub" in entry else "check the entry's hub/revision/config/hf_split or path")
        raise DataError(f"datasets.{name}: cannot load {_where(entry)} split {split!r} "
                        f"({type(e).__name__}: {str(e).splitlines()[0][:300]}); {hint}") from e


def fingerprint(entry: dict) -> dict:
    """What was loaded: the hub commit, or the sha256 of every local file."""
    if "hub" in entry:
        return {"hub": entry["hub"], "revision": entry["revision"], "config": entry.get("config"),
                "split": entry.get("hf_split", "train")}
    path = Path(entry["path"])
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {"path": str(path), "split": entry.get("hf_split", "train"),
            "sha256": {str(p.relative_to(path) if path.is_dir() else p.name): sha256_file(p) for p in files}}


def records(spec: DatasetSpec, entry: dict, rows) -> list[dict]:
    """Rows -> normalized, validated records; errors name the dataset, the item and the column."""
    fields, where = entry["fields"], f"datasets.{spec.name} ({_where(entry)})"
    rule = ANSWER_RULES.get(entry.get("answer_rule", ""))
    out = []
    for i, row in enumerate(rows):
        instruction = field_of(where, i, row, fields["instruction"], str)
        if not instruction.strip():
            raise DataError(f"{where}: item {i}: column {fields['instruction']!r} (instruction) is empty")
        input_ = field_of(where, i, row, fields["input"], str) if "input" in fields else ""
        output = field_of(where, i, row, fields["output"], str) if "output" in fields else ""
        if "answer" in fields:
            raw = field_of(where, i, row, fields["answer"], (str, int, float))
        elif rule:
            raw = rule(output)
            if raw is None:
                raise DataError(f"{where}: item {i}: answer_rule {entry['answer_rule']!r} finds no answer in column "
                                f"{fields.get('output')!r}: {output[-120:]!r}")
        else:
            raise DataError(f"{where}: map an answer column (fields.answer) or name an answer_rule")
        out.append(normalized_record(spec, i, instruction, input_, output, gold_answer(where, i, spec, raw)))
    if not out:
        raise DataError(f"{where}: no items")
    return out


def selected(rows, entry: dict):
    """The rows whose columns have one of the allowed values (`where: {column: [values]}`) and, with
    `max_chars`, whose instruction and output joined by a space have at most that many characters (PEFT's
    MetaMathQA filter, `len(f"{query} {response}") <= 1300`); else all."""
    where = entry.get("where") or {}
    missing = sorted(set(where) - set(rows.column_names))
    if missing:
        raise DataError(f"datasets: `where` names column(s) {missing} the dataset lacks; columns: "
                        f"{', '.join(rows.column_names)}")
    if where:
        rows = rows.filter(lambda row: all(row[c] in allowed for c, allowed in where.items()))
    if entry.get("max_chars"):
        text = [entry["fields"][k] for k in ("instruction", "output") if k in entry["fields"]]
        rows = rows.filter(lambda row: len(" ".join(row[c] for c in text)) <= entry["max_chars"])
    return rows


def load(spec: DatasetSpec, entry: dict, out_path: str | Path, source_path: str | Path) -> int:
    """Normalize the dataset into `out_path` (JSONL) and record what was loaded in `source_path`."""
    rows = selected(open_dataset(spec.name, entry), entry)
    normalized = records(spec, entry, rows)
    write_jsonl(out_path, normalized)
    write_json(source_path, {**fingerprint(entry), "items": len(normalized)})
    return len(normalized)
