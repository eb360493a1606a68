"""The fine-tune job: a base model + an adapter trained on a prepared training set -> the adapter directory (weights,
config, metrics.json with its labels, a checksum manifest), resumable from checkpoints. `scripts/finetune.py` parses
the rule's command line and calls `finetune`; tests call it directly."""
from __future__ import annotations

import dataclasses
import json
import shutil
import time

from pipeline_lib.catalog import base_models, dtypes, methods
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.models import efficiency
from pipeline_lib.planning import code, paths
from pipeline_lib.runtime import allocator, gpu, provenance
from pipeline_lib.runtime.files import (
    atomic_path,
    fingerprint,
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
    write_manifest,
)


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
    attempts = []
    while True:
        try:
            return _finetune(model_dir, data, out, adapter, training, labels, device, quantization,
                             trust_remote_code, on_checkpoint, retried=attempts)
        except Exception as e:  # only the failures a trial may have are kept; the rest are re-raised
            if not (allow_failure and _trial_failure(e)):
                raise
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
            if not _out_of_memory(e) or len(attempts) >= OOM_RETRIES:
                break
            # memory a neighbour held (another job on the GPU, a transient peak) is not the method's failure: wait,
            # free what this process holds, and try again from the last checkpoint
            wait = OOM_BACKOFF_S * 2 ** len(attempts)
            attempts.append({"reason": reason, "waited_s": wait})
            print(f"out of memory ({reason}); attempt {len(attempts) + 1} of {OOM_RETRIES + 1} in {wait:g} s")
            _free_memory()
            time.sleep(wait)
    failed = {**labels, "failed": reason, "attempts": len(attempts) + 1, "retried": attempts,
              "adapter_spec": adapter, "training": training}
    with atomic_path(out, directory=True) as tmp:
        write_json(tmp / "metrics.json", failed)
        write_manifest(tmp)
    shutil.rmtree(paths.checkpoint_dir(out), ignore_errors=True)
    print(f"trial failed, recorded for its selection: {failed['failed']}")
    return failed


OOM_RETRIES = 2       # further attempts of a tuning trial that ran out of memory
OOM_BACKOFF_S = 30.0  # the first wait before one; doubled each time


def _out_of_memory(error: Exception) -> bool:
    import torch

    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in str(error).lower()


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _trial_failure(error: Exception) -> bool:
    """A failure a tuning trial may have and its selection reports: a diverged loss, exhausted memory."""

    from pipeline_lib.training.loop import TrainingError

    return isinstance(error, TrainingError) or _out_of_memory(error)


def _finetune(model_dir, data, out, adapter, training, labels, device, quantization, trust_remote_code,
              on_checkpoint, retried: list | None = None) -> dict | None:
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
                    fingerprint=fingerprint(adapter, vars(cfg), quantization, convert.identity(model_dir),
                                            sha256_file(data), code.job_code("finetune.py")),
                    on_checkpoint=on_checkpoint)
    counts.update(adapters.parameter_counts(model))  # what trained: LoRA-FA's optimizer freezes A when it is built
    if distributed.world()[0] > 0:
        return None
    with atomic_path(out, directory=True) as tmp:
        adapters.save(model, tmp)
        size = sum(f.stat().st_size for f in tmp.iterdir() if f.name.startswith("adapter_model"))
        # the verdict beside what the job then ran at: its real training speed in the chosen precision
        precision_record = {**precision_record, "job_tokens_per_s": metrics["tokens_per_s"]}
        spent = efficiency.record(efficiency.training_flops(efficiency.matmul_weights(model), metrics["tokens"]),
                                  metrics["wall_time_s"], str(device), cfg.autocast)
        metrics = {**labels, **counts, **metrics, "precision": precision_record, "efficiency": spent,
                   "adapter_file_bytes": size,
                   "provenance": provenance.record(convert.provenance(model_dir), {data: sha256_file(data)}, device),
                   "processes": distributed.world()[1],
                   "adapter_spec": adapter, "training": vars(cfg), "quantization": quantization,
                   "allocation": gpu.allocation(), "retried": retried or [], "started": started,
                   "finished": time.time()}
        write_json(tmp / "metrics.json", metrics)
        write_manifest(tmp)  # evaluation checks it before loading: a damaged cached adapter is never used
    shutil.rmtree(paths.checkpoint_dir(out), ignore_errors=True)
    return metrics


def frozen_bytes(model) -> int:
    """Memory of the frozen (base) weights as trained on: quantized, cast to bf16, or as loaded."""
    return sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
