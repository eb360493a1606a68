"""What the entry points share: torch's thread count, the arguments of every job that loads a base model."""
import json

from pipeline_lib.catalog.base_models import QUANTIZATIONS, quantization_settings


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
    parser.add_argument("--quantization", type=quantization, default=None,
                        help=f"{' | '.join(QUANTIZATIONS)} | JSON settings (bits, quant_type, double_quant, "
                             f"compute_dtype)")


def quantization(text: str) -> dict | None:
    return quantization_settings(json.loads(text) if text.startswith("{") else text)
