import pytest

from pipeline_lib import models


def test_model_sources():
    assert models.model_source("smollm2-135m", None) == {"embedded": "smollm2-135m"}
    assert models.model_source("mine", {"path": "/m"}) == {"path": "/m"}
    assert models.model_source("opt", {"hub": "facebook/opt-125m"}) == {"hub": "facebook/opt-125m"}
    with pytest.raises(KeyError, match="unknown model 'gpt-5'; valid: smollm2-135m"):
        models.model_source("gpt-5", None)
    with pytest.raises(ValueError, match="exactly one of 'path'"):
        models.model_source("both", {"path": "/m", "hub": "x/y"})


def test_load_rejects_a_non_model_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        models.load(tmp_path)


def test_loaded_tokenizer_has_a_pad_token(tiny):
    model, tokenizer = tiny
    assert tokenizer.pad_token_id is not None and model.config.model_type == "llama"


def test_quantization_is_refused_without_cuda(tiny_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        models.load(tiny_dir, quantization="4bit")
