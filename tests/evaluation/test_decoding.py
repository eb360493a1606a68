import torch

from pipeline_lib.evaluation.decoding import batches_longest_first, cut_at_stop, generate

PROMPTS = ["The answer is", "How many apples did Tom have left after he sold 48 clips in April?", "Answer:"]


def test_batched_left_padded_generation_equals_one_at_a_time(tiny):
    model, tokenizer = tiny
    batched = generate(model, tokenizer, PROMPTS, batch_size=3, max_new_tokens=8)
    single = [generate(model, tokenizer, [p], batch_size=1, max_new_tokens=8)[0] for p in PROMPTS]
    assert batched == single
    assert any(batched)  # a random model still emits text


def test_generation_without_attention_mask_would_differ(tiny):
    """The upstream commonsense bug: left padding without a mask changes the padded rows' outputs."""
    model, tokenizer = tiny
    tokenizer.padding_side = "left"
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        masked = model(**enc).logits[:, -1]
        unmasked = model(input_ids=enc["input_ids"]).logits[:, -1]
    assert (masked - unmasked).abs().max() > 1e-4


def test_longest_prompts_come_first_and_every_index_once():
    batches = list(batches_longest_first([3, 9, 1, 7, 5], 2))
    assert batches == [[1, 3], [4, 0], [2]]


def test_stop_strings_cut_the_response():
    assert cut_at_stop("The answer is 4.\n### Instruction: next", ["### Instruction:"]) == "The answer is 4."
    assert cut_at_stop("  plain  ", ["###"]) == "plain"


def test_auto_batch_size_follows_free_memory(tiny):
    from pipeline_lib.evaluation.decoding import auto_batch_size, kv_bytes_per_token

    model, tokenizer = tiny
    per_token = kv_bytes_per_token(model.config, 4)
    assert per_token == 2 * 2 * 2 * 8 * 4  # k+v, 2 layers, 2 kv heads, head dim 8, float32
    per_sequence = 2 * per_token * (100 + 28)
    assert auto_batch_size(model, 100, 28, 1000, free_bytes=10 * per_sequence, fraction=1.0, cap=64) == 10
    assert auto_batch_size(model, 100, 28, 1000, free_bytes=0) == 1
    assert auto_batch_size(model, 100, 28, 3, free_bytes=10**12) == 3
    assert auto_batch_size(model, 100, 28, 1000, free_bytes=10**12) == 64
    out = generate(model, tokenizer, PROMPTS, batch_size="auto", max_new_tokens=4)
    assert out == generate(model, tokenizer, PROMPTS, batch_size=1, max_new_tokens=4)
