"""Shared set-up for the entry points: make pipeline_lib importable and pin torch's thread count."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline_lib.models import QUANTIZATIONS  # noqa: E402


def set_threads(n: int) -> None:
    # Snakemake runs jobs side by side; each torch job must stay within the cores its rule declared.
    import torch

    torch.set_num_threads(max(1, n))


def add_model_args(parser) -> None:
    """Arguments of every script that loads a base model."""
    parser.add_argument("--model", required=True, help="base model directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--quantization", default="none", choices=QUANTIZATIONS)
