"""Fine-tune one adapter on one training set; write the adapter and its training metrics."""
import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import _common
from pipeline_lib import adapters, distributed, models
from pipeline_lib.files import atomic_path, read_jsonl, sha256_file, write_json, write_manifest
from pipeline_lib.training import TrainConfig, cast_frozen_linears, train

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--data", required=True, help="normalized training JSONL")
parser.add_argument("--out", required=True, help="adapter directory to create")
parser.add_argument("--adapter", required=True, help="adapter spec as JSON")
parser.add_argument("--training", required=True, help="training config as JSON")
_common.add_model_args(parser)
args = parser.parse_args()
_common.set_threads(args.threads)

import torch  # noqa: E402

spec, cfg = json.loads(args.adapter), TrainConfig(**json.loads(args.training))
device = distributed.local_device(args.device)  # under torchrun: one process per device, gradients summed
distributed.init(device)
rank = distributed.world()[0]
model, tokenizer = models.load(args.model, device=device, trust_remote_code=args.trust_remote_code,
                               quantization=args.quantization)
torch.manual_seed(cfg.seed)  # the adapter's initial weights come from the seed too
model = adapters.attach(model, spec)
counts = adapters.parameter_counts(model)
if cfg.autocast_bf16 and args.quantization == "none":
    cast_frozen_linears(model)  # autocast would cast them to bf16 on every forward anyway
print(json.dumps({"adapter": spec, "training": vars(cfg), "processes": distributed.world()[1], **counts}))
# checkpoints live beside the output (Snakemake removes a failed job's outputs, not this) and are reused only
# by a run with the same inputs
checkpoint_dir = Path(args.out + ".checkpoint")
fingerprint = hashlib.sha256(json.dumps([spec, vars(cfg), args.model, sha256_file(args.data)],
                                        sort_keys=True).encode()).hexdigest()
metrics = train(model, tokenizer, read_jsonl(args.data), cfg, checkpoint_dir=checkpoint_dir, fingerprint=fingerprint)
if rank > 0:  # every process ends with the same weights; the first one writes them
    sys.exit(0)
with atomic_path(args.out, directory=True) as tmp:
    adapters.save(model, tmp)
    size = sum(f.stat().st_size for f in tmp.iterdir() if f.name.startswith("adapter_model"))
    write_json(tmp / "metrics.json", {**counts, **metrics, "adapter_file_bytes": size,
                                      "processes": distributed.world()[1],
                                      "adapter": spec, "training": vars(cfg), "finished": time.time()})
    write_manifest(tmp)  # evaluation checks it before loading: a damaged cached adapter is never used
shutil.rmtree(checkpoint_dir, ignore_errors=True)
print(f"final loss {metrics['loss'][-1]:.4f}, {metrics['tokens_per_s']} tokens/s, {metrics['wall_time_s']} s")
