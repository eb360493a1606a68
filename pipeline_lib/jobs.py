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

from pipeline_lib.catalog import base_models, dtypes, methods
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.planning import paths
from pipeline_lib.planning.render import RenderPlan
from pipeline_lib.runtime import allocator, gpu, provenance
from pipeline_lib.runtime.files import (
    atomic_path,
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
    write_jsonl,
    write_manifest,
)


def _fingerprint(*parts) -> str:
    """What a resumed job must share with the one it resumes (its inputs and settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def finetune(model_dir: str, data: str, out: str, adapter: dict, training: dict, labels: dict,
             device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False,
             on_checkpoint=None, selection: str | None = None, allow_failure: bool = False) -> dict | None:
    """Train `adapter` on `data` and write it to `out`; return its metrics (None in data-parallel processes
    other than the first, which end with the same weights and leave the writing to it). `selection` (tuning): the
    chosen setting's values, applied over the adapter's and the training's own. `allow_failure` (a tuning trial):
    a diverged loss or exhausted memory is written to `out` as the trial's result instead of failing the job."""
    if selection:
        from pipeline_lib.planning.tuning import split_values

        options, settings = split_values(read_json(selection)["chosen"]["values"])
        adapter, training = {**adapter, **options}, {**training, **settings}
    try:
        return _finetune(model_dir, data, out, adapter, training, labels, device, quantization, trust_remote_code,
                         on_checkpoint)
    except Exception as e:  # only the failures a trial may have are kept; the rest are re-raised
        if not (allow_failure and _trial_failure(e)):
            raise
        failed = {**labels, "failed": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}",
                  "adapter_spec": adapter, "training": training}
        with atomic_path(out, directory=True) as tmp:
            write_json(tmp / "metrics.json", failed)
            write_manifest(tmp)
        shutil.rmtree(paths.checkpoint_dir(out), ignore_errors=True)
        print(f"trial failed, recorded for its selection: {failed['failed']}")
        return failed


def _trial_failure(error: Exception) -> bool:
    """A failure a tuning trial may have and its selection reports: a diverged loss, exhausted memory."""
    import torch

    from pipeline_lib.training.loop import TrainingError

    return isinstance(error, (TrainingError, MemoryError, torch.OutOfMemoryError)) or \
        "out of memory" in str(error).lower()


def _finetune(model_dir, data, out, adapter, training, labels, device, quantization, trust_remote_code,
              on_checkpoint) -> dict | None:
    import torch

    from pipeline_lib import adapters, models
    from pipeline_lib.models import convert, precision
    from pipeline_lib.training import distributed
    from pipeline_lib.training.loop import cast_frozen_linears, initialisation_batches, train

    started = time.time()
    allocator.keep_freed_memory()
    device = distributed.local_device(device)  # under torchrun: one process per device, gradients summed
    distributed.init(device)
    # `auto` resolved here, on the job's own device, for its own step; the resolved settings fingerprint the
    # checkpoints
    cfg = TrainConfig(**training)  # its defaults are the schema's (tests/catalog/test_schema.py)
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
        from pipeline_lib.adapters import quantized_check

        quantized_check.check(model, adapter, quantization, f"a {base_models.describe_quantization(quantization)} base "
                              f"on {dtypes.describe(precision.choose(device, work))}")
    counts = adapters.parameter_counts(model)
    if dtypes.frozen_weights_dtype(cfg.autocast, quantization) == "bfloat16":
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
                   "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device),
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


def _inference_model(model_dir: str, adapter_dir: str | None, settings: dict, device: str, quantization: dict | None,
                     trust_remote_code: bool, merge: bool = True):
    """(model in eval mode, tokenizer, the evaluation's settings with its dtype resolved, the precision record, the
    quantization resolved): the base, its adapter loaded and merged where the method can be merged (on a quantized
    base the adapter stays unmerged: merging would requantize it), in the precision `auto` chose for the job's
    own step. `merge=False` keeps the adapter's modules in place (to switch it off, or to time both forms)."""
    import torch

    from pipeline_lib import adapters, models
    from pipeline_lib.models import precision

    # `auto` resolved on the job's device, for its own step
    work = precision.model_workload("inference", inference_tokens(settings), model_dir)
    dtype, precision_record = precision.resolve(dtypes.evaluation_dtype(settings["dtype"], quantization), device,
                                                work)
    quantization = precision.resolved_quantization(quantization, device, work)
    model, tokenizer = models.load(model_dir, device=device, trust_remote_code=trust_remote_code,
                                   quantization=quantization)
    if adapter_dir:
        model = adapters.load(model, adapter_dir)
        if merge and not quantization:
            model = adapters.merge_for_inference(model)
    if not quantization:
        model = model.to(getattr(torch, dtype))
    return model.eval(), tokenizer, {**settings, "dtype": dtype}, precision_record, quantization


def evaluate(model_dir: str, adapter_dir: str | None, data: str, predictions: str, score: str, labels: dict,
             settings: dict, device: str = "cpu", quantization: dict | None = None,
             trust_remote_code: bool = False) -> dict:
    """Score every item of `data` under the settings' protocol (generate and extract, or lm-eval's
    log-likelihoods); write the predictions and the score; return it."""
    from pipeline_lib.models import convert

    started = time.time()
    allocator.keep_freed_memory()
    model, tokenizer, settings, precision_record, quantization = _inference_model(
        model_dir, adapter_dir, settings, device, quantization, trust_remote_code)
    done, summary = _score(model, tokenizer, data, settings, predictions, [model_dir, adapter_dir, quantization])
    write_jsonl(predictions, done)
    precision_record = {**precision_record, "job_new_tokens_per_s": summary.get("new_tokens_per_s"),
                        "job_items_per_s": summary.get("items_per_s")}
    result = {**labels, **summary, "evaluation": settings, "precision": precision_record,
              "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device),
              "quantization": quantization, "allocation": gpu.allocation(), "started": started,
              "finished": time.time()}
    write_json(score, result)
    Path(paths.partial(predictions)).unlink(missing_ok=True)
    return result


def _score(model, tokenizer, data: str, settings: dict, predictions: str, inputs: list) -> tuple[list, dict]:
    """The protocol's scorer over every item: lm-eval's log-likelihoods in one call, or generation resumed from the
    partial predictions of an interrupted run with the same inputs (`inputs`: model dir, adapter dir, quantization)."""
    if settings["scorer"] == "loglikelihood":
        from pipeline_lib.evaluation import loglikelihood

        return loglikelihood.evaluate(model, tokenizer, read_jsonl(data), settings, where=data)
    from pipeline_lib.evaluation.generate import evaluate as run

    model_dir, adapter_dir, quantization = inputs
    weights = sorted(str(p) for p in Path(adapter_dir).glob("adapter_model*")) if adapter_dir else []
    fingerprint = _fingerprint(settings, quantization, model_dir, [sha256_file(p) for p in [data, *weights]])
    return run(model, tokenizer, read_jsonl(data), settings, partial=Path(paths.partial(predictions)),
               fingerprint=fingerprint)


def validate(model_dir: str, adapter_dir: str, data: str, record: str, predictions: str, labels: dict,
             settings: dict, training: dict, device: str = "cpu", quantization: dict | None = None,
             trust_remote_code: bool = False) -> dict:
    """A tuning trial on its training set's validation split: its loss there (as the fine-tune computes it) and,
    for metric accuracy, its answers scored by the protocol in `settings`. A failed trial is recorded as failed."""
    from pipeline_lib.evaluation.loss import token_loss

    trained = read_json(paths.metrics(adapter_dir))
    if trained.get("failed"):
        result = {**labels, "failed": trained["failed"]}
        write_jsonl(predictions, [])
        write_json(record, result)
        return result
    started = time.time()
    allocator.keep_freed_memory()
    evaluation = settings if settings["metric"] == "accuracy" else {"dtype": "auto", "scorer": "loss", "batch_size": 1}
    model, tokenizer, evaluation, precision_record, quantization = _inference_model(
        model_dir, adapter_dir, evaluation, device, quantization, trust_remote_code)
    records, cfg = read_jsonl(data), TrainConfig(**training)
    loss = token_loss(model, tokenizer, records, cfg.cutoff_len, cfg.train_on_inputs, cfg.prompt)
    result = {**labels, "metric": settings["metric"], "n": len(records), "loss": round(loss["loss"], 6),
              "tokens": loss["tokens"]}
    if settings["metric"] == "accuracy":
        done, summary = _score(model, tokenizer, data, evaluation, predictions, [model_dir, adapter_dir, quantization])
        result |= {"accuracy": summary["accuracy"], "ci95": summary["ci95"], "rules": summary["rules"],
                   "protocol": evaluation["protocol"]}
    else:
        done = [{"id": r["id"], "loss": round(x, 6)} for r, x in zip(records, loss["items"])]
    write_jsonl(predictions, done)
    from pipeline_lib.models import convert

    result |= {"precision": precision_record, "started": started, "finished": time.time(),
               "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device)}
    write_json(record, result)
    Path(paths.partial(predictions)).unlink(missing_ok=True)
    return result


def select_setting(out: str, records: list[str], adapter_dirs: list[str], adapter: str, metric: str,
                   trials: dict[str, dict]) -> dict:
    """The setting of `adapter` chosen from its trials' validation records (and their fine-tunes' costs) alone."""
    from pipeline_lib.evaluation.selection import choose

    rows = []
    for record_path, adapter_dir in zip(records, adapter_dirs):
        r, m = read_json(record_path), read_json(paths.metrics(adapter_dir))
        rows.append({"trial": r["run"], "values": trials[r["run"]], "failed": r.get("failed"),
                     "accuracy": r.get("accuracy"), "loss": r.get("loss"), "n": r.get("n"),
                     "tokens": m.get("tokens"), "wall_time_s": m.get("wall_time_s"),
                     "peak_rss_mb": m.get("peak_rss_mb"), "peak_cuda_mb": m.get("peak_cuda_mb")})
    selection = choose(adapter, metric, rows)
    write_json(out, selection)
    return selection


def _selections(paths_: list[str]) -> list[dict]:
    """Every selection that exists (the `tables` target renders before tuning has finished, too), labelled by the
    (model, adapter, training set) of its path: results/tuning/<model>/<adapter>/<train>/selection.json."""
    found = []
    for path in paths_:
        if Path(path).is_file():
            model, adapter, train = Path(path).parts[-4:-1]
            found.append({**read_json(path), "model": model, "adapter": adapter, "train_set": train})
    return found


def forgetting(model_dir: str, adapter_dir: str, out: str, labels: dict, reference: dict, tokens: int,
               sequence_length: int, batch_size: int, device: str = "cpu", quantization: dict | None = None,
               trust_remote_code: bool = False) -> dict:
    """The adapter's forgetting (evaluation/forgetting.py): mean per-token cross-entropy on the reference text with
    the adapter disabled and enabled, in one process at the precision `auto` chose."""
    from pipeline_lib import adapters
    from pipeline_lib.evaluation import forgetting as forget
    from pipeline_lib.models import convert

    started = time.time()
    allocator.keep_freed_memory()
    text, about = forget.reference_text(reference)
    settings = {"dtype": "auto", "scorer": "loglikelihood", "batch_size": batch_size}  # windows of ~256 tokens
    model, tokenizer, settings, precision_record, _ = _inference_model(
        model_dir, adapter_dir, settings, device, quantization, trust_remote_code, merge=False)
    rows = forget.windows(tokenizer, text, tokens, sequence_length)
    with adapters.disabled(model):
        disabled = forget.cross_entropy(model, rows, batch_size)
    enabled = forget.cross_entropy(model, rows, batch_size)
    record = {**labels, "reference": about, "windows": len(rows), "sequence_length": sequence_length,
              "tokens_scored": int(rows.shape[0] * (rows.shape[1] - 1)),
              "cross_entropy_disabled": round(disabled, 6), "cross_entropy_enabled": round(enabled, 6),
              "forgetting": round(enabled - disabled, 6), "precision": precision_record,
              "started": started, "finished": time.time(),
              "provenance": provenance.record(convert.provenance(model_dir), {about["name"]: about["sha256"]}, device)}
    write_json(out, record)
    return record


def merging(model_dir: str, adapter_dir: str, data: str, items: int, out: str, labels: dict, settings: dict,
            device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False) -> dict:
    """The first `items` items of `data` generated with the adapter unmerged, then merged (evaluation/merging.py)."""
    from pipeline_lib.evaluation.merging import compare
    from pipeline_lib.models import convert

    started = time.time()
    allocator.keep_freed_memory()
    model, tokenizer, settings, precision_record, _ = _inference_model(
        model_dir, adapter_dir, settings, device, quantization, trust_remote_code, merge=False)
    record = {**labels, **compare(model, tokenizer, read_jsonl(data)[:items], settings), "dataset": Path(data).stem,
              "precision": precision_record, "started": started, "finished": time.time(),
              "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device)}
    write_json(out, record)
    return record


def _records(paths_: list[str]) -> dict[tuple, dict]:
    """Cost records that exist (the `tables` target renders before every job ran), keyed as the fine-tune's
    metrics: (model, adapter, training set, seed)."""
    records = [read_json(p) for p in paths_ if Path(p).is_file()]
    return {(r["model"], r["adapter"], r["train_set"], r.get("seed")): r for r in records}


def inference_tokens(settings: dict) -> int:
    """The token positions of one forward pass of an evaluation: a decoding step of its batch (times its beams), or
    a log-likelihood batch of contexts (about 256 tokens each)."""
    batch = settings["batch_size"] if isinstance(settings["batch_size"], int) else 16
    if settings["scorer"] == "loglikelihood":
        return batch * 256
    return batch * settings.get("generation", {}).get("num_beams", 1)


def render(scores: list[str], predictions: list[str], adapters: list[str], contamination: str,
           plan: RenderPlan, selections: list[str] = (), forgetting: list[str] = (), merging: list[str] = ()) -> None:
    """Every table and figure of the run from its score files, their predictions (parallel to the scores),
    fine-tune metrics and contamination report, as the render plan says. Scores not computed yet are skipped,
    saying so (the `tables` target renders whatever exists)."""
    import sys

    from pipeline_lib.report import aggregate, outputs, published, tables
    from pipeline_lib.runtime.files import read_json

    missing = [p for p in scores if not Path(p).is_file()]
    if missing:
        print(f"skipping {len(missing)} score file(s) not computed yet, e.g. {missing[0]}", file=sys.stderr)
    present = [i for i, p in enumerate(scores) if Path(p).is_file()]
    runs = tables.collect([scores[i] for i in present], plan.paper_rules,  # one row per run (each seed's)
                          [predictions[i] for i in present])
    datasets = plan.datasets
    found = aggregate.outcomes(runs)  # per-item outcomes of every cell's seeds
    cells = aggregate.cells(runs, found)  # one row per cell: means over seeds, intervals over seeds and items
    overlap = read_json(contamination) if Path(contamination).is_file() else None
    # before the data stage has run (the `tables` target) there is no report, and nothing to mark
    marks = tables.contamination_marks(overlap, plan.train_parts, datasets) if overlap else {}
    metrics = tables.load_metrics([paths.metrics(d) for d in adapters if Path(paths.metrics(d)).is_file()])
    numeric = tables.accuracy_table(cells, datasets)
    for note in tables.model_version_notes(runs):
        print(f"WARNING: {note}", file=sys.stderr)
    costs = _records(forgetting), _records(merging)
    context = outputs.Context(
        runs=runs, found=found, cells=cells, numeric=numeric, averages=aggregate.averages(found, datasets),
        marks=marks, metrics=metrics, overlap=overlap, datasets=datasets,
        published=published.load(plan.published), published_names=plan.published_names,
        published_adapters=plan.published_adapters, published_training=plan.published_training,
        sweeps=plan.sweeps, protocols=plan.protocols,
        selections={(s["model"], s["adapter"], s["train_set"]): s for s in _selections(selections)},
        tuned=(plan.tuning or {}).get("tuned", {}), forgetting=costs[0], merging=costs[1],
        suites=plan.suites or {"train": {}, "eval": {}}, card=plan.card)
    where = {"table": Path(plan.tables), "figure": Path(plan.figures), "page": Path(plan.tables).parent}
    for output in outputs.applicable(plan.sweeps, plan.protocols, bool(plan.tuning)):  # the render rule's outputs
        output.write(context, where[output.kind] / output.name)
    print(numeric.to_string(index=False))
