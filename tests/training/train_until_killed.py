"""Run by tests/training/test_resume.py in a subprocess: a seeded LoRA fine-tune of the tiny model that SIGKILLs its
own process right after the checkpoint at step --kill-at (0: never), or with --how TERM sends itself SIGTERM during step --kill-at (a scheduler's notice ahead of a kill, between two checkpoints), then, if
it lives, saves its trainable weights and prints its metrics.

    PYTHONPATH=tests python tests/training/train_until_killed.py TINY_DIR OUT.safetensors [--checkpoint-dir DIR]
        [--kill-at N] [--how KILL|TERM]
"""
import argparse
import json
import os
import signal

import torch
from safetensors.torch import save_file

from helpers import RECORDS
from pipeline_lib import adapters, models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.training.loop import train

LORA = {"method": "lora", "r": 4, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
CONFIG = TrainConfig(max_steps=7, batch_size=4, micro_batch_size=2, warmup_steps=1, learning_rate=1e-2,
                     checkpoint_every=2)


def main(args) -> None:
    model, tokenizer = models.load(args.tiny_dir)
    torch.manual_seed(0)
    model = adapters.attach(model, LORA)

    def on_checkpoint(step):
        if args.how == "KILL" and args.kill_at and step >= args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    if args.how == "TERM":
        calls = []

        def terminated_during_step(module, inputs):
            calls.append(1)  # two micro-batches (forward calls) a step
            if len(calls) == 2 * args.kill_at - 1:
                os.kill(os.getpid(), signal.SIGTERM)  # its handler only marks it: the step goes on to its end

        model.register_forward_pre_hook(terminated_during_step)
    metrics = train(model, tokenizer, RECORDS, CONFIG, progress=False, checkpoint_dir=args.checkpoint_dir,
                    fingerprint="same-inputs", on_checkpoint=on_checkpoint)
    save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}, args.out)
    print(json.dumps({k: metrics[k] for k in ("resumed_from_step", "loss", "segments", "wall_time_s", "tokens",
                                              "tokens_per_s")}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("tiny_dir")
    parser.add_argument("out")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--how", choices=["KILL", "TERM"], default="KILL")
    main(parser.parse_args())
