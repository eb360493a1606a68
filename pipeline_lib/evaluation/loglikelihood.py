"""The log-likelihood protocols (`harness`, `harness_labels`: catalog/protocols.py) through lm-evaluation-harness's
Python API, on our model with its adapter already applied (any method: lm-eval's HFLM takes a built model).

For one prepared evaluation set: each item's options are read from its instruction (evaluation/choices.py); the
items become lm-eval documents in a JSONL file and a task YAML over it (`dataset_path: json`, no hub access),
loaded with a TaskManager on that folder only; lm-eval scores them with `log_samples` on, so every item's
per-choice log-likelihoods and its `acc` / `acc_norm` come back. The task YAML is recorded in the score.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import yaml

from pipeline_lib.catalog.prompts import ALPACA, evaluation_prompt
from pipeline_lib.evaluation import choices, stats

STDERR_BOOTSTRAP = 1000  # lm-eval's bootstrap iterations for metrics without a closed-form stderr (acc has one)


def documents(records: list[dict], variant: str, answer_lead: str, where: str = "",
              template: str = ALPACA) -> tuple[list[dict], bool]:
    """(one lm-eval document per record, whether they are multiple-input). A document holds the item's id, its
    gold index, and `context` + `choices`, or (a fill-in-the-blank sentence under `harness`) `contexts`, one per
    option, and their common `continuation`: lm-eval's WinoGrande convention (partial evaluation)."""
    docs, multiple_input = [], False
    for i, r in enumerate(records):
        item = f"{where} item {i} (id {r['id']})"
        parsed = choices.parse(r["answer_type"], r["instruction"], item)
        gold = parsed.index(r["answer"]) if r["answer"] in parsed.labels else None
        if gold is None:
            raise choices.FormatError(f"{item}: gold answer {r['answer']!r} is not one of {'/'.join(parsed.labels)}")
        if variant == "labels":
            prompt = evaluation_prompt(r["instruction"], r.get("input", ""), template) + answer_lead
            docs.append({"id": r["id"], "gold": gold, "context": prompt, "choices": list(parsed.labels)})
        elif r["answer_type"] == "option2":
            if parsed.question.count("_") != 1:
                raise choices.FormatError(f"{item}: a fill-in-the-blank sentence needs exactly one '_'")
            before, after = parsed.question.split("_")
            docs.append({"id": r["id"], "gold": gold, "contexts": [before + o for o in parsed.options],
                         "continuation": after.strip()})
            multiple_input = True
        elif r["answer_type"] == "ending4":
            docs.append({"id": r["id"], "gold": gold, "context": parsed.question, "choices": list(parsed.options)})
        else:
            docs.append({"id": r["id"], "gold": gold, "context": f"Question: {parsed.question}\nAnswer:",
                         "choices": list(parsed.options)})
    return docs, multiple_input


def task_config(name: str, docs_file: Path, multiple_input: bool, cache_dir: Path) -> dict:
    """The lm-eval task over our documents file: multiple choice, `acc` and `acc_norm`."""
    fields = ({"doc_to_text": "gold", "doc_to_choice": "contexts", "doc_to_target": "continuation"} if multiple_input
              else {"doc_to_text": "context", "doc_to_choice": "choices", "doc_to_target": "gold"})
    return {"task": name, "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(docs_file)}, "cache_dir": str(cache_dir)},
            "test_split": "test", "output_type": "multiple_choice", **fields, "target_delimiter": " ",
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                            for m in ("acc", "acc_norm")],
            "metadata": {"version": 1}}


def run_task(model, tokenizer, docs: list[dict], multiple_input: bool, batch_size, name: str = "peft_bench"):
    """lm-eval on the documents: (its results block for the task, its logged samples, the task YAML)."""
    import datasets
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    datasets.disable_progress_bars()  # one bar per loaded documents file otherwise; lm-eval shows its own
    with tempfile.TemporaryDirectory(prefix="harness-") as tmp:
        folder = Path(tmp)
        docs_file = folder / "documents.jsonl"
        docs_file.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        task = task_config(name, docs_file, multiple_input, folder / "cache")
        text = yaml.safe_dump(task, sort_keys=False)
        (folder / "tasks").mkdir()
        (folder / "tasks" / f"{name}.yaml").write_text(text, encoding="utf-8")
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(model.device))
        out = lm_eval.simple_evaluate(model=lm, tasks=[name], task_manager=TaskManager(
            include_path=str(folder / "tasks"), include_defaults=False), log_samples=True,
            bootstrap_iters=STDERR_BOOTSTRAP, verbosity="WARNING")
    return out["results"][name], out["samples"][name], text.replace(str(folder), "<job scratch>")


def evaluate(model, tokenizer, records: list[dict], settings: dict, where: str = "") -> tuple[list[dict], dict]:
    """(one prediction per record, in record order; summary score with both rules and a 95% interval), as
    pipeline_lib.evaluation.generate returns them. A prediction's `response` is the chosen choice, its `extracted`
    that option's label, so it compares with a generation protocol's extracted answer item by item."""
    docs, multiple_input = documents(records, settings["variant"], settings["answer_lead"], where, settings["prompt"])
    start = time.perf_counter()
    results, samples, task_yaml = run_task(model, tokenizer, docs, multiple_input, settings["batch_size"])
    wall = time.perf_counter() - start
    by_id = {s["doc"]["id"]: s for s in samples}
    predictions = []
    for r, doc in zip(records, docs):
        s = by_id[r["id"]]
        lls = [float(x[0]) for x in s["filtered_resps"]]
        chosen = max(range(len(lls)), key=lls.__getitem__)
        labels = choices.parse(r["answer_type"], r["instruction"]).labels
        choice = doc["choices"][chosen] if "choices" in doc else doc["contexts"][chosen]
        predictions.append({"id": r["id"], "response": choice, "extracted": labels[chosen],
                            "gold": r["answer"], "correct": bool(s[settings["reported"]]),
                            "rules": {"acc": bool(s["acc"]), "acc_norm": bool(s["acc_norm"])},
                            "loglikelihoods": lls})
    summary = stats.accuracy_summary([p["correct"] for p in predictions])
    summary["rules"] = {rule: sum(p["rules"][rule] for p in predictions) / len(predictions)
                        for rule in ("acc", "acc_norm")}
    summary.update({"lm_eval": {k.split(",")[0]: v for k, v in results.items() if "acc" in k},
                    "task": task_yaml, "wall_time_s": round(wall, 2), "resumed_items": 0,
                    "items_per_s": round(len(records) / wall, 3) if wall > 0 else None,
                    "protocol": settings["protocol"]})
    return predictions, summary
