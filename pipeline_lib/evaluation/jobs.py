"""The jobs that run a trained (or base) model without training it: `evaluate` (an evaluation set scored under its
protocol -> predictions and a score), `validate` (a tuning trial on its validation split), and the cost jobs
`forgetting` and `merging`. Each builds its model with `inference_model`, the one place the evaluated form of a
model is decided. `scripts/<job>.py` parses the rule's command line and calls the function of the same name."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from pipeline_lib.catalog import dtypes, protocols
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.models import efficiency
from pipeline_lib.planning import code, paths
from pipeline_lib.planning.estimates import inference_tokens
from pipeline_lib.runtime import allocator, gpu, provenance
from pipeline_lib.runtime.files import fingerprint, read_json, read_jsonl, sha256_file, write_json, write_jsonl


def inference_precision(model_dir: str, settings: dict, device: str, quantization: dict | None) -> tuple:
    """(dtype, the precision record, the quantization resolved) of an evaluation: `auto` resolved on the job's
    device for its own step (models/precision.py)."""
    from pipeline_lib.models import precision

    work = precision.model_workload("inference", inference_tokens(settings), model_dir)
    dtype, record = precision.resolve(dtypes.evaluation_dtype(settings["dtype"], quantization), device, work)
    return dtype, record, precision.resolved_quantization(quantization, device, work)


def inference_model(model_dir: str, adapter_dir: str | None, settings: dict, device: str, quantization: dict | None,
                    trust_remote_code: bool, merge: bool = True):
    """(model in eval mode, tokenizer, the evaluation's settings with its dtype resolved, the precision record, the
    quantization resolved): the base, its adapter loaded and merged where the method can be merged (on a quantized
    base the adapter stays unmerged: merging would requantize it), in the precision `auto` chose for the job's
    own step. `merge=False` keeps the adapter's modules in place (to switch it off, or to time both forms)."""
    import torch

    from pipeline_lib import adapters, models

    dtype, precision_record, quantization = inference_precision(model_dir, settings, device, quantization)
    model, tokenizer = models.load(model_dir, device=device, trust_remote_code=trust_remote_code,
                                   quantization=quantization)
    if adapter_dir:
        model = adapters.load(model, adapter_dir)
        if merge and not quantization:
            model = adapters.merge_for_inference(model)
    if not quantization:
        model = model.to(getattr(torch, dtype))
    return model.eval(), tokenizer, {**settings, "dtype": dtype}, precision_record, quantization


def evaluate(model_dir: str, adapter_dir: str | None, sets: list[dict], settings: list[dict], labels: dict,
             device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False) -> list[dict]:
    """A row's evaluations: each of `sets` ({protocol, dataset, data, predictions, score}) scored under its
    `settings` (generate and extract, or lm-eval's log-likelihoods) with the model loaded once per precision; the
    generating sets that decode alike pooled (generate.evaluate_sets). Each set's predictions and score are written
    as soon as it is complete; a set whose score was made from the same inputs, settings and code (its
    `fingerprint`) is kept as it is. Returns every set's score."""
    from pipeline_lib.models import convert

    started = time.time()
    allocator.keep_freed_memory()
    identity, weights = convert.identity(model_dir), _adapter_weights(adapter_dir)
    jobs = []
    for where, given in zip(sets, settings):
        dtype, precision_record, resolved = inference_precision(model_dir, given, device, quantization)
        jobs.append({**where, "settings": {**given, "dtype": dtype}, "precision": precision_record,
                     "quantization": resolved,
                     "fingerprint": _set_fingerprint({**given, "dtype": dtype}, resolved, identity, where["data"],
                                                     weights)})
    scores = {i: kept for i, job in enumerate(jobs) if (kept := _kept(job))}
    for i in scores:
        print(f"{jobs[i]['protocol']}/{jobs[i]['dataset']}: kept (made from the same inputs, settings and code)")
    for group in _by_precision([i for i in range(len(jobs)) if i not in scores], jobs):
        first = jobs[group[0]]
        model, tokenizer, *_ = inference_model(model_dir, adapter_dir, first["settings"], device, quantization,
                                               trust_remote_code)
        about = {"labels": labels, "device": device, "started": started, "model": convert.provenance(model_dir)}
        scores |= _score_sets(model, tokenizer, [jobs[i] for i in group], group, about)
        del model
    for job in jobs:
        Path(paths.partial(job["predictions"])).unlink(missing_ok=True)
    return [scores[i] for i in range(len(jobs))]


def _adapter_weights(adapter_dir: str | None) -> list[str]:
    """The sha256 of each of the adapter's weight files (what a kept set or a resumed one must share)."""
    if not adapter_dir:
        return []
    return [sha256_file(p) for p in sorted(str(p) for p in Path(adapter_dir).glob("adapter_model*"))]


def _set_fingerprint(settings: dict, quantization: dict | None, identity, data: str, weights: list[str]) -> str:
    """What a kept set, or a resumed one, must share: settings (dtype resolved), quantization, the model's content,
    the evaluation's code, the set's file and the adapter's weights."""
    return fingerprint(settings, quantization, identity, code.job_code("evaluate.py"), [sha256_file(data), *weights])


def _kept(job: dict) -> dict | None:
    """The set's score where it was made from the same inputs, settings and code, its predictions beside it."""
    try:
        score = read_json(job["score"])
    except (OSError, ValueError):
        return None
    return score if score.get("fingerprint") == job["fingerprint"] and Path(job["predictions"]).is_file() else None


def _by_precision(indices: list[int], jobs: list[dict]) -> list[list[int]]:
    """The sets to score, grouped by the model they need (dtype and quantization): one load per group."""
    groups: dict[str, list[int]] = {}
    for i in indices:
        key = fingerprint(jobs[i]["settings"]["dtype"], jobs[i]["quantization"])
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _score_sets(model, tokenizer, jobs: list[dict], indices: list[int], about: dict) -> dict[int, dict]:
    """Score the sets on one model: log-likelihood sets one by one, the generating ones pooled; each set's files
    written as soon as it is complete (`about`: the row's labels, the device, the job's start, the model's
    provenance). Returns {index: score}."""
    from pipeline_lib.evaluation import generate

    done: dict[int, dict] = {}

    def write(k: int, records: list, predictions: list, summary: dict) -> None:
        done[indices[k]] = _write_set(model, jobs[k], predictions, _with_chance(records, predictions, summary),
                                      about)

    pending = {}
    for k, job in enumerate(jobs):
        records = read_jsonl(job["data"])
        if job["settings"]["scorer"] == "loglikelihood":
            from pipeline_lib.evaluation import loglikelihood

            predictions, summary = loglikelihood.evaluate(model, tokenizer, records, job["settings"],
                                                          where=job["data"])
            write(k, records, predictions, summary)
        else:
            pending[k] = generate.Pending(records, job["settings"], Path(paths.partial(job["predictions"])),
                                          job["fingerprint"])
    order = list(pending)
    generate.evaluate_sets(model, tokenizer, [pending[k] for k in order],
                           lambda j, predictions, summary: write(order[j], pending[order[j]].records, predictions,
                                                                 summary))
    return done


def _with_chance(records: list, predictions: list, summary: dict) -> dict:
    """The summary with what a guess would score (`chance`) and how many responses had no answer to extract."""
    from pipeline_lib.evaluation.choices import chance

    missing = sum(p.get("extracted") is None for p in predictions)
    return {**summary, "chance": chance(records), "no_answer": missing,
            "no_answer_share": missing / len(predictions) if predictions else None}


def _write_set(model, job: dict, predictions: list, summary: dict, about: dict) -> dict:
    """One set's predictions, then its score (the score last: a score on disk means its predictions are)."""
    settings, device = job["settings"], about["device"]
    write_jsonl(job["predictions"], predictions)
    precision_record = {**job["precision"], "job_new_tokens_per_s": summary.get("new_tokens_per_s"),
                        "job_items_per_s": summary.get("items_per_s")}
    result = {**about["labels"], "protocol": job["protocol"], "dataset": job["dataset"], **summary,
              "evaluation": settings, "precision": precision_record,
              "efficiency": generation_efficiency(model, summary, device, settings["dtype"]),
              "provenance": provenance.record(about["model"], {job["data"]: sha256_file(job["data"])}, device),
              "quantization": job["quantization"], "allocation": gpu.allocation(), "fingerprint": job["fingerprint"],
              "started": about["started"], "finished": time.time()}
    write_json(job["score"], result)
    return result


def generation_efficiency(model, summary: dict, device: str, dtype: str) -> dict | None:
    """The generation's model FLOPs (prefill and decoding) over its wall time against the device's peak
    (models/efficiency.py); None for a log-likelihood protocol (lm-eval batches its own forward passes) or where
    nothing was generated (every item resumed)."""
    if "prompt_tokens" not in summary or not summary.get("generated_rows"):
        return None
    flops = efficiency.generation_flops(efficiency.matmul_weights(model), summary["prompt_tokens"],
                                        summary["new_tokens"], summary["generated_rows"])
    return efficiency.record(flops, summary["wall_time_s"], device, dtype)


def _score(model, tokenizer, data: str, settings: dict, predictions: str, inputs: list) -> tuple[list, dict]:
    """The protocol's scorer over every item: lm-eval's log-likelihoods in one call, or generation resumed from the
    partial predictions of an interrupted run with the same inputs (`inputs`: model dir, adapter dir, quantization);
    the summary says what a guess would score (`chance`) and how many responses had no answer to extract."""
    records = read_jsonl(data)
    if settings["scorer"] == "loglikelihood":
        from pipeline_lib.evaluation import loglikelihood

        done, summary = loglikelihood.evaluate(model, tokenizer, records, settings, where=data)
    else:
        from pipeline_lib.evaluation.generate import evaluate as run
        from pipeline_lib.models import convert

        model_dir, adapter_dir, quantization = inputs
        key = _set_fingerprint(settings, quantization, convert.identity(model_dir), data,
                               _adapter_weights(adapter_dir))
        done, summary = run(model, tokenizer, records, settings, partial=Path(paths.partial(predictions)),
                            fingerprint=key)
    return done, _with_chance(records, done, summary)


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
    evaluation = settings if settings["metric"] == "accuracy" else dict(protocols.LOSS_SETTINGS)
    model, tokenizer, evaluation, precision_record, quantization = inference_model(
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


def forgetting_base(model_dir: str, out: str, reference: dict, tokens: int, sequence_length: int, batch_size: int,
                    device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False,
                    scoring: str = "windows") -> dict:
    """The base model's side of every forgetting job of a model, computed once for all its fine-tunes: each
    window's cross-entropy in the precision `auto` chose and, where that is not float32, the first FLOOR_WINDOWS
    windows in float32 too; with the fingerprint of what made them (`ReferencePass.made`). A forgetting job takes
    them as its adapter-disabled pass where it would make the same (an adapter switched off computes the base
    model's forward: tests/evaluation/test_forgetting.py checks it, bit for bit, for LoRA, the Series and Parallel
    bottlenecks and prefix tuning)."""
    started = time.time()
    allocator.keep_freed_memory()
    scored = ReferencePass(model_dir, None, reference, tokens, sequence_length, batch_size, device, quantization,
                            trust_remote_code, scoring)
    timer = time.perf_counter()
    disabled = scored.cross_entropy()
    spent = scored.efficiency(disabled, time.perf_counter() - timer)
    record = {"reference": scored.about, "scoring": scoring, "windows": len(scored.rows), "made": scored.made,
              "dtype": scored.dtype, "per_window": [list(x) for x in disabled],
              "floor_float32": [list(x) for x in scored.floor(disabled=False)] if scored.dtype != "float32"
              else None,
              "precision": scored.precision_record, "efficiency": spent, "started": started, "finished": time.time(),
              "provenance": scored.provenance()}
    write_json(out, record)
    return record


def forgetting(model_dir: str, adapter_dir: str, out: str, labels: dict, reference: dict, tokens: int,
               sequence_length: int, batch_size: int, device: str = "cpu", quantization: dict | None = None,
               trust_remote_code: bool = False, scoring: str = "windows", base: str | None = None) -> dict:
    """The adapter's forgetting (evaluation/forgetting.py): per-token cross-entropy on the reference text with the
    adapter disabled and enabled, window by window, in one process at the precision `auto` chose; its 95% interval
    over the windows; where that precision is not float32, the disabled model's cross-entropy on the first
    FLOOR_WINDOWS windows in float32 too (how much the precision alone moves the measurement). The disabled pass
    and that floor are `base`'s (forgetting_base's record) where it made them the same way, else computed here."""
    from pipeline_lib.evaluation import forgetting as forget

    started = time.time()
    allocator.keep_freed_memory()
    scored = ReferencePass(model_dir, adapter_dir, reference, tokens, sequence_length, batch_size, device,
                            quantization, trust_remote_code, scoring)
    shared = _base_pass(base, scored.made)
    timer = time.perf_counter()
    if shared:
        disabled = [tuple(x) for x in shared["per_window"]]
    else:
        disabled = scored.cross_entropy(disabled=True)
    enabled = scored.cross_entropy()
    spent = scored.efficiency(enabled if shared else enabled + disabled, time.perf_counter() - timer)
    low, high = forget.bootstrap_difference(enabled, disabled)
    record = {**labels, "reference": scored.about, "scoring": scoring, "windows": len(scored.rows),
              "sequence_length": sequence_length, "tokens_scored": sum(n for _, n in enabled),
              "cross_entropy_disabled": round(forget.mean(disabled), 6),
              "cross_entropy_enabled": round(forget.mean(enabled), 6),
              "forgetting": round(forget.mean(enabled) - forget.mean(disabled), 6),
              "forgetting_ci95": [round(low, 6), round(high, 6)],
              "per_window": {"disabled": [round(x, 4) for x, _ in disabled],
                             "enabled": [round(x, 4) for x, _ in enabled], "tokens": [n for _, n in enabled]},
              "disabled_pass": f"the base model's, from {base}" if shared else "computed in this job",
              "dtype": scored.dtype, "precision": scored.precision_record, "efficiency": spent}
    if scored.dtype != "float32":
        floor = [tuple(x) for x in shared["floor_float32"]] if shared else scored.floor(disabled=True)
        record["precision_floor"] = {
            "windows": len(floor), "cross_entropy_float32": round(forget.mean(floor), 6),
            f"cross_entropy_{scored.dtype}": round(forget.mean(disabled[:len(floor)]), 6),
            "difference": round(forget.mean(disabled[:len(floor)]) - forget.mean(floor), 6)}
    record |= {"started": started, "finished": time.time(), "provenance": scored.provenance()}
    write_json(out, record)
    return record


class ReferencePass:
    """A forgetting job's model (its adapter unmerged, in the precision `auto` chose) and reference windows, and
    `made`: the fingerprint of the base pass such a job makes (the windows' tokens, batch size, precision,
    quantization, model content, code and the kind of device), which a shared base pass must carry."""

    def __init__(self, model_dir, adapter_dir, reference, tokens, sequence_length, batch_size, device, quantization,
                 trust_remote_code, scoring):
        from pipeline_lib.evaluation import forgetting as forget
        from pipeline_lib.models import convert

        documents, self.about = forget.reference_documents(reference)
        settings = {"dtype": "auto", "scorer": "loglikelihood", "batch_size": batch_size}  # windows of ~256 tokens
        self.model, tokenizer, settings, self.precision_record, resolved = inference_model(
            model_dir, adapter_dir, settings, device, quantization, trust_remote_code, merge=False)
        self.rows = forget.windows(tokenizer, documents, tokens, sequence_length) if scoring == "windows" else \
            forget.document_rows(tokenizer, documents, sequence_length)
        self.dtype, self.batch_size, self.model_dir, self.device = settings["dtype"], batch_size, model_dir, device
        self.loading = (adapter_dir, quantization, trust_remote_code)  # what the float32 floor's model is built from
        windows = hashlib.sha256(b"".join(row.numpy().tobytes() + b"|" for row in self.rows)).hexdigest()
        self.made = fingerprint({"batch_size": batch_size, "dtype": self.dtype}, resolved, convert.identity(model_dir),
                                code.stage_hash(code.PACKAGE.parent / "scripts" / "forgetting_base.py"),
                                [windows, _device_kind(device)])

    def cross_entropy(self, disabled: bool = False, rows=None, model=None) -> list[tuple[float, int]]:
        from pipeline_lib import adapters
        from pipeline_lib.evaluation import forgetting as forget

        model = self.model if model is None else model
        rows = self.rows if rows is None else rows
        if not disabled:
            return forget.cross_entropy(model, rows, self.batch_size)
        with adapters.disabled(model):
            return forget.cross_entropy(model, rows, self.batch_size)

    def floor(self, disabled: bool) -> list[tuple[float, int]]:
        """The base model's cross-entropy on the first FLOOR_WINDOWS windows in float32 (the job's own model is
        released first: one model in memory at a time)."""
        adapter_dir, quantization, trust_remote_code = self.loading
        self.model = None
        model32 = inference_model(self.model_dir, adapter_dir, {"dtype": "float32", "scorer": "loglikelihood",
                                                                "batch_size": self.batch_size},
                                  self.device, quantization, trust_remote_code, merge=False)[0]
        return self.cross_entropy(disabled, self.rows[:FLOOR_WINDOWS], model32)

    def efficiency(self, scores: list[tuple[float, int]], seconds: float) -> dict:
        forwarded = sum(n + 1 for _, n in scores)  # each window's tokens (n scored of n + 1)
        return efficiency.record(efficiency.forward_flops(efficiency.matmul_weights(self.model), forwarded), seconds,
                                 self.device, self.dtype)

    def provenance(self) -> dict:
        from pipeline_lib.models import convert

        return provenance.record(convert.provenance(self.model_dir), {self.about["name"]: self.about["sha256"]},
                                 self.device)


def _base_pass(path: str | None, made: str) -> dict | None:
    """forgetting_base's record where it was made as this job would make it (else None: computed here)."""
    if not path:
        return None
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    return record if record.get("made") == made else None


def _device_kind(device: str) -> dict:
    """What a computation's rounding depends on beyond its inputs: the GPU's name, or the CPU's model and ISA."""
    import torch

    from pipeline_lib.models import precision

    if str(device).startswith("cuda"):
        return {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__}
    return precision.machine_key()


FLOOR_WINDOWS = 16  # windows scored in float32 as well, where the job's precision is lower


def merging(model_dir: str, adapter_dir: str, data: str, items: int, out: str, labels: dict, settings: dict,
            device: str = "cpu", quantization: dict | None = None, trust_remote_code: bool = False) -> dict:
    """The first `items` items of `data` generated with the adapter unmerged and merged as `evaluate` merges it
    (evaluation/merging.py), timed in alternating order; where the precision is not float32, the float32 control
    and the base model's own precision floor beside the agreement."""
    import gc

    from pipeline_lib import adapters
    from pipeline_lib.evaluation import merging as merged_vs
    from pipeline_lib.models import convert

    started = time.time()
    allocator.keep_freed_memory()
    records = read_jsonl(data)[:items]

    def build(dtype: str | None, merge: bool):
        return inference_model(model_dir, adapter_dir, {**settings, **({"dtype": dtype} if dtype else {})}, device,
                               quantization, trust_remote_code, merge=merge)
    unmerged, tokenizer, resolved, precision_record, _ = build(None, False)
    dtype, record = resolved["dtype"], {"items": len(records)}
    merged = build(None, True)[0]
    if adapters.carries_adapter(merged):  # the method cannot merge: evaluate scores it unmerged, as here
        record |= {"mergeable": False, "why": adapters.unmergeable_reason(merged)}
    else:
        runs = merged_vs.timed({"unmerged": unmerged, "merged": merged}, tokenizer, records, resolved)
        u, m = runs["unmerged"], runs["merged"]
        for form, model in (("unmerged", unmerged), ("merged", merged)):
            runs[form]["speed"]["efficiency"] = generation_efficiency(model, runs[form]["speed"], device, dtype)
        record |= {"mergeable": True, "dtype": dtype, "merged_in": "float32, then cast (as evaluate builds it)",
                   "unmerged": u["speed"], "merged": m["speed"],
                   "speedup": round(m["speed"]["new_tokens_per_s"] / u["speed"]["new_tokens_per_s"], 3)
                   if u["speed"]["new_tokens_per_s"] and m["speed"]["new_tokens_per_s"] else None,
                   "agreement": merged_vs.agreement(u["predictions"], m["predictions"])}
        if dtype != "float32":
            with adapters.disabled(unmerged):
                base_low = merged_vs.generated(unmerged, tokenizer, records, resolved)
            del merged, unmerged
            gc.collect()
            control = {}
            for merge in (False, True):
                model32, _, settings32, _, _ = build("float32", merge)
                control[merge] = merged_vs.generated(model32, tokenizer, records, settings32)
                if not merge:
                    with adapters.disabled(model32):
                        base32 = merged_vs.generated(model32, tokenizer, records, settings32)
                del model32
                gc.collect()
            record |= {"float32_control": merged_vs.agreement(control[False], control[True]),
                       "precision_floor": {**merged_vs.agreement(base_low, base32), "of": f"the base model, {dtype} "
                                                                                          f"against float32"}}
    record |= {**labels, "dataset": Path(data).stem, "precision": precision_record, "started": started,
               "finished": time.time(),
               "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device)}
    write_json(out, record)
    return record
