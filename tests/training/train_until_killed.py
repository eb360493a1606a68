"""Run by tests/training/test_resume.py in a subprocess: a seeded LoRA fine-tune of the tiny model that SIGKILLs its own
process right after the checkpoint at step `kill_at` (0: never), or with TERM sends itself SIGTERM during step
`kill_at` (a scheduler's notice ahead of a kill, between two checkpoints), then, if it lives, saves its trainable
weights and prints its metrics.

    PYTHONPATH=tests python tests/training/train_until_killed.py TINY_DIR CHECKPOINT_DIR|"" OUT.safetensors KILL_AT [TERM]
"""
import json
import os
import signal
import sys

import torch
from safetensors.torch import save_file

from helpers import RECORDS
from pipeline_lib import adapters, models
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.training import loop
from pipeline_lib.training.loop import train

LORA = {"method": "lora", "r": 4, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
CONFIG = TrainConfig(max_steps=7, batch_size=4, micro_batch_size=2, warmup_steps=1, learning_rate=1e-2,
                     checkpoint_every=2)


def main(tiny_dir: str, checkpoint_dir: str, out: str, kill_at: int, how: str = "KILL") -> None:
    model, tokenizer = models.load(tiny_dir)
    torch.manual_seed(0)
    model = adapters.attach(model, LORA)

    def on_checkpoint(step):
        if how == "KILL" and kill_at and step >= kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    if how == "TERM":
        steps, forward_backward = [], loop._forward_backward

        def terminated_during_step(*args):
            steps.append(1)
            if len(steps) == kill_at:
                os.kill(os.getpid(), signal.SIGTERM)  # its handler only marks it: the step goes on to its end
            return forward_backward(*args)

        loop._forward_backward = terminated_during_step

    metrics = train(model, tokenizer, RECORDS, CONFIG, progress=False, checkpoint_dir=checkpoint_dir or None,
                    fingerprint="same-inputs", on_checkpoint=on_checkpoint)
    save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}, out)
    print(json.dumps({k: metrics[k] for k in ("resumed_from_step", "loss", "segments", "wall_time_s", "tokens",
                                              "tokens_per_s")}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:])
