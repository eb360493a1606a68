"""The pipeline's jobs, each one function with explicit arguments: what a rule's script runs after parsing its
command line, and what tests call directly.

finetune  a base model + an adapter trained on a prepared training set -> the adapter directory (weights,
          config, metrics.json with its labels, a checksum manifest), resumable from checkpoints
evaluate  a base model (+ a fine-tuned adapter) on a prepared evaluation set -> predictions (JSONL, one line
          per item) and a score (JSON with its labels), resumable from the partial predictions file
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

from . import paths
from .files import atomic_path, read_jsonl, sha256_file, write_json, write_jsonl, write_manifest


def _fingerprint(*parts) -> str:
    """What a resumed job must share with the one it resumes (its inputs and settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def finetune(model_dir: str, data: str, out: str, adapter: dict, training: dict, labels: dict,
             device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False,
             on_checkpoint=None) -> dict | None:
    """Train `adapter` on `data` and write it to `out`; return its metrics (None in data-parallel processes
    other than the first, which end with the same weights and leave the writing to it)."""
    import torch

    from . import adapters, allocator, distributed, gpu, methods, models, precision
    from .training import TrainConfig, cast_frozen_linears, initialisation_batches, train

    started = time.time()
    allocator.keep_freed_memory()
    device = distributed.local_device(device)  # under torchrun: one process per device, gradients summed
    distributed.init(device)
    # `auto` resolved here, on the job's own device, for its own step; the resolved settings fingerprint the
    # checkpoints
    cfg = TrainConfig(**training)  # its defaults are the schema's (tests/test_schema.py)
    work = precision.model_workload("train", cfg.micro_batch_size * cfg.cutoff_len, model_dir)
    autocast, precision_record = precision.training_autocast(cfg.autocast, device, work)
    cfg = dataclasses.replace(cfg, autocast=autocast)
    quantization = precision.resolved_quantization(quantization, device, work)
    model, tokenizer = models.load(model_dir, device=device, trust_remote_code=trust_remote_code,
                                   quantization=quantization)
    torch.manual_seed(cfg.seed)  # the adapter's initial weights come from the seed too
    records = read_jsonl(data)
    model = adapters.attach(model, adapter, batches=initialisation_batches(tokenizer, records, cfg, device))
    if quantization and methods.on_4bit(adapter["method"]) == "checked":
        from .adapters import quantized_check

        quantized_check.check(model, adapter, quantization, f"a {models.describe_quantization(quantization)} base "
                              f"on {precision.describe(precision.choose(device, work))}")
    counts = adapters.parameter_counts(model)
    if precision.frozen_weights_dtype(cfg.autocast, quantization) == "bfloat16":
        cast_frozen_linears(model)
    counts["base_weights_mb"] = round(frozen_bytes(model) / 2 ** 20, 1)  # what quantization saves
    print(json.dumps({"adapter": adapter, "training": vars(cfg), "processes": distributed.world()[1], **counts}))
    metrics = train(model, tokenizer, records, cfg, checkpoint_dir=paths.checkpoint_dir(out),
                    fingerprint=_fingerprint(adapter, vars(cfg), quantization, model_dir, sha256_file(data)),
                    on_checkpoint=on_checkpoint)
    counts.update(adapters.parameter_counts(model))  # what trained: LoRA-FA's optimizer freezes A when it is built
    if distributed.world()[0] > 0:
        return None
    with atomic_path(out, directory=True) as tmp:
        adapters.save(model, tmp)
        size = sum(f.stat().st_size for f in tmp.iterdir() if f.name.startswith("adapter_model"))
        # the verdict beside what the job then ran at: its real training speed in the chosen precision
        precision_record = {**precision_record, "job_tokens_per_s": metrics["tokens_per_s"]}
        metrics = {**labels, **counts, **metrics, "precision": precision_record, "adapter_file_bytes": size,
                   "processes": distributed.world()[1],
                   "adapter_spec": adapter, "training": vars(cfg), "quantization": quantization,
                   "allocation": gpu.allocation(), "started": started, "finished": time.time()}
        write_json(tmp / "metrics.json", metrics)
        write_manifest(tmp)  # evaluation checks it before loading: a damaged cached adapter is never used
    shutil.rmtree(paths.checkpoint_dir(out), ignore_errors=True)
    return metrics


def frozen_bytes(model) -> int:
    """Memory of the frozen (base) weights as trained on: quantized, cast to bf16, or as loaded."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)


def evaluate(model_dir: str, adapter_dir: str | None, data: str, predictions: str, score: str, labels: dict,
             settings: dict, device: str = "cpu", quantization: dict | None = None,
             trust_remote_code: bool = False) -> dict:
    """Score every item of `data` under the settings' protocol (generate and extract, or lm-eval's
    log-likelihoods); write the predictions and the score; return it."""
    import torch

    from . import adapters, allocator, gpu, models, precision
    from .evaluation import evaluate as run

    started = time.time()
    allocator.keep_freed_memory()
    # `auto` resolved on the job's device, for its own step
    work = precision.model_workload("inference", inference_tokens(settings), model_dir)
    dtype, precision_record = precision.resolve(precision.evaluation_dtype(settings["dtype"], quantization), device,
                                                work)
    quantization = precision.resolved_quantization(quantization, device, work)
    settings = {**settings, "dtype": dtype}
    model, tokenizer = models.load(model_dir, device=device, trust_remote_code=trust_remote_code,
                                   quantization=quantization)
    if adapter_dir:
        model = adapters.load(model, adapter_dir)
        if not quantization:  # on a quantized base the adapter stays unmerged (merging would requantize it)
            model = adapters.merge_for_inference(model)
    if not quantization:
        model = model.to(getattr(torch, settings["dtype"]))
    model.eval()
    partial = Path(paths.partial(predictions))
    if settings["scorer"] == "loglikelihood":  # lm-eval scores the whole set in one call: nothing to resume
        from . import harness

        done, summary = harness.evaluate(model, tokenizer, read_jsonl(data), settings, where=data)
    else:  # a partial file from an interrupted run is reused only if every input is the same
        weights = sorted(str(p) for p in Path(adapter_dir).glob("adapter_model*")) if adapter_dir else []
        fingerprint = _fingerprint(settings, quantization, model_dir, [sha256_file(p) for p in [data, *weights]])
        done, summary = run(model, tokenizer, read_jsonl(data), settings, partial=partial, fingerprint=fingerprint)
    write_jsonl(predictions, done)
    precision_record = {**precision_record, "job_new_tokens_per_s": summary.get("new_tokens_per_s"),
                        "job_items_per_s": summary.get("items_per_s")}
    result = {**labels, **summary, "evaluation": settings, "precision": precision_record,
              "quantization": quantization, "allocation": gpu.allocation(), "started": started,
              "finished": time.time()}
    write_json(score, result)
    partial.unlink(missing_ok=True)
    return result


def inference_tokens(settings: dict) -> int:
    """The token positions of one forward pass of an evaluation: a decoding step of its batch (times its beams), or
    a log-likelihood batch of contexts (about 256 tokens each)."""
    batch = settings["batch_size"] if isinstance(settings["batch_size"], int) else 16
    if settings["scorer"] == "loglikelihood":
        return batch * 256
    return batch * settings.get("generation", {}).get("num_beams", 1)


def render(scores: list[str], predictions: list[str], adapters: list[str], contamination: str, plan: dict) -> None:
    """Every table and figure of the run from its score files, their predictions (parallel to the scores),
    fine-tune metrics and contamination report, as `plan` (rules/render.smk `render_plan`) says. Scores not
    computed yet are skipped, saying so (the `tables` target renders whatever exists)."""
    import sys

    from . import aggregate, outputs, published, tables
    from .files import read_json

    missing = [p for p in scores if not Path(p).is_file()]
    if missing:
        print(f"skipping {len(missing)} score file(s) not computed yet, e.g. {missing[0]}", file=sys.stderr)
    present = [i for i, p in enumerate(scores) if Path(p).is_file()]
    runs = tables.collect([scores[i] for i in present], plan["paper_rules"],  # one row per run (each seed's)
                          [predictions[i] for i in present])
    datasets = plan["datasets"]
    found = aggregate.outcomes(runs)  # per-item outcomes of every cell's seeds
    cells = aggregate.cells(runs, found)  # one row per cell: means over seeds, intervals over seeds and items
    overlap = read_json(contamination) if Path(contamination).is_file() else None
    marks = tables.contamination_marks(overlap or {"policy": "report", "level": "near", "pairs": {}, "levels": [],
                                                   "ngram": 8, "threshold": 0.8}, plan["train_parts"], datasets)
    metrics = tables.load_metrics([paths.metrics(d) for d in adapters if Path(paths.metrics(d)).is_file()])
    numeric = tables.accuracy_table(cells, datasets)
    context = outputs.Context(
        runs=runs, found=found, cells=cells, numeric=numeric, averages=aggregate.averages(found, datasets),
        marks=marks, metrics=metrics, overlap=overlap, datasets=datasets,
        published=published.load(plan["published"]), published_names=plan["published_names"],
        published_adapters=plan["published_adapters"], published_training=plan["published_training"],
        sweeps=plan["sweeps"], protocols=plan["protocols"])
    where = {"table": Path(plan["tables"]), "figure": Path(plan["figures"])}
    for output in outputs.applicable(plan["sweeps"], plan["protocols"]):  # exactly the render rule's declared outputs
        output.write(context, where[output.kind] / output.name)
    print(numeric.to_string(index=False))
