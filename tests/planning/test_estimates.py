"""The memory and runtime estimates behave as documented in pipeline_lib/planning/estimates.py."""
import pytest

from pipeline_lib.planning import estimates

TRAINING = {"micro_batch_size": 4, "cutoff_len": 256, "batch_size": 16, "epochs": 3, "max_steps": None,
            "autocast": "bfloat16", "gradient_checkpointing": False}


@pytest.mark.parametrize("params, hidden, layers", [(134.5e6, 576, 30), (6.74e9, 4096, 32), (13.0e9, 5120, 40)])
def test_hidden_times_layers_fit_within_ten_percent(params, hidden, layers):
    assert estimates.hidden_units(params) == pytest.approx(hidden * layers, rel=0.10)


def test_quantization_and_checkpointing_lower_gpu_memory():
    full = estimates.finetune(6.74e9, TRAINING, 10_000, "cuda")
    four_bit = estimates.finetune(6.74e9, TRAINING, 10_000, "cuda", {"bits": 4})
    checkpointed = estimates.finetune(6.74e9, {**TRAINING, "gradient_checkpointing": True}, 10_000, "cuda")
    assert four_bit["gpu_mem_mb"] < 0.6 * full["gpu_mem_mb"]
    assert checkpointed["gpu_mem_mb"] < full["gpu_mem_mb"]
    assert 14_000 < full["gpu_mem_mb"] < 40_000  # LLaMA-7B bf16 + LoRA fits one 40-80 GB GPU


def test_runtime_grows_with_data_and_cpu_jobs_need_no_gpu():
    small = estimates.finetune(134.5e6, TRAINING, 320, "cpu")
    large = estimates.finetune(134.5e6, TRAINING, 3200, "cpu")
    assert large["runtime"] > small["runtime"] and small["gpu_mem_mb"] == 0
    assert small["mem_mb"] >= 4096


def test_model_size_from_config_or_local_config_json(tmp_path):
    assert estimates.model_params("x", {"params_b": 7}) == 7e9
    assert estimates.model_params("smollm2-135m", {"embedded": "smollm2-135m"}) == 134.5e6
    (tmp_path / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 100}')
    assert estimates.model_params("y", {"path": str(tmp_path)}) == 12 * 2 * 64 * 64 + 100 * 64


def test_evaluation_estimates_follow_the_resolved_protocol_settings():
    from helpers import settings

    fast = estimates.evaluate(6.74e9, settings({"batch_size": 64, "dtype": "bfloat16"}, "commonsense"), 1000, "cuda")
    fast_math = estimates.evaluate(6.74e9, settings({"batch_size": 64, "dtype": "bfloat16"}, "math"), 1000, "cuda")
    paper = estimates.evaluate(6.74e9, settings({"dtype": "bfloat16"}, "math", "paper"), 1000, "cuda")
    assert fast["runtime"] < fast_math["runtime"] < paper["runtime"]  # 32 < 256 tokens; beams without cache
    assert paper["gpu_mem_mb"] < fast_math["gpu_mem_mb"]  # a batch of one prompt holds a smaller cache


@pytest.mark.parametrize("name", ["LLaMA-7B", "LLaMA-13B"])
def test_four_bit_estimates_of_the_paper_models_follow_their_architecture(name):
    """The 4-bit weight memory of LLaMA-7B/13B counted layer by layer on the meta device (linears at 0.55 B, the
    embedding and output head unquantized in float32) against the estimate: equal with the architecture's E,
    within 10% with the default share of P when E is unknown."""
    import torch
    from transformers import AutoModelForCausalLM

    from pipeline_lib.catalog.base_models import FOUR_BIT
    from pipeline_lib.support.paper_counts import paper_model_configs

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(paper_model_configs()[name])
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    linears = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)) - \
        model.get_output_embeddings().weight.numel()
    counted = 0.55 * linears + 4 * embedding + 4 * (params - linears - embedding)  # norms stay float32 too
    assert estimates.weight_bytes(params, "bfloat16", FOUR_BIT, embedding) == pytest.approx(counted, rel=0.01)
    assert estimates.weight_bytes(params, "bfloat16", FOUR_BIT) == pytest.approx(counted, rel=0.10)
    gpu = estimates.finetune(params, TRAINING, 10_000, "cuda", FOUR_BIT)["gpu_mem_mb"]
    bf16 = estimates.finetune(params, TRAINING, 10_000, "cuda")["gpu_mem_mb"]
    assert gpu < 0.75 * bf16
