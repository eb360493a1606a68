import pytest
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
    assert auto_batch_size(model, 100, 28, 1000, free_bytes=10**12) == 128  # a CPU's cap, measured
    out = generate(model, tokenizer, PROMPTS, batch_size="auto", max_new_tokens=4)
    assert out == generate(model, tokenizer, PROMPTS, batch_size=1, max_new_tokens=4)


def _left_padded(tokenizer, prompts):
    tokenizer.padding_side = "left"
    return tokenizer(prompts, return_tensors="pt", padding=True)


def _rows(out, pad):
    """A padded (rows x tokens) tensor's rows as lists, the padding after each row's end dropped."""
    rows = []
    for row in out.tolist():
        while row and row[-1] == pad:
            row.pop()
        rows.append(row)
    return rows


def test_greedy_equals_transformers_generate_while_rows_leave_the_batch(tiny):
    """The evaluation's own loop against transformers' generate() (what it replaced) on a left-padded batch whose
    rows end at different steps: the same tokens row for row, with and without a stop string; and every decoding
    step after a row's end runs without that row (the batch sizes the model sees shrink)."""
    model, tokenizer = tiny
    enc = _left_padded(tokenizer, PROMPTS)
    pad = tokenizer.pad_token_id
    free = new_tokens_of(model, enc, 12, None, pad)
    # an "EOS" each row meets at a different step: the token of row 0's third step
    eos = free[0][2]
    ends = [row.index(eos) if eos in row else None for row in free]
    assert len({e for e in ends}) > 1, ends  # the rows do end apart
    sizes = []
    hook = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: sizes.append(a[0].shape[0]))
    ours = new_tokens_of(model, enc, 12, eos, pad)
    hook.remove()
    theirs = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=12,
                            eos_token_id=eos, pad_token_id=pad, do_sample=False)[:, enc["input_ids"].shape[1]:]
    assert ours == _rows(theirs, pad)
    assert sizes[0] == 3 and sizes == sorted(sizes, reverse=True) and sizes[-1] < 3
    assert len(sizes) == max(len(r) for r in ours)  # the prefill, then a step per token after each row's first
    # a stop string met in the new text of one row: that row stops where generate()'s stop_strings stop it
    text = tokenizer.decode(free[1])
    stop = text[len(text) // 2: len(text) // 2 + 2]
    ours = new_tokens_of(model, enc, 12, None, pad, stop_strings=[stop], tokenizer=tokenizer)
    theirs = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], max_new_tokens=12,
                            pad_token_id=pad, eos_token_id=None, stop_strings=[stop], tokenizer=tokenizer,
                            do_sample=False)[:, enc["input_ids"].shape[1]:]
    assert len(ours[1]) < 12 and stop in tokenizer.decode(ours[1])
    assert [r[:len(o)] for r, o in zip(_rows(theirs, pad), ours)] == ours


def new_tokens_of(model, enc, n, eos, pad, **kwargs):
    from pipeline_lib.evaluation.decoding import new_tokens

    return _rows(new_tokens(model, enc["input_ids"], enc["attention_mask"], n, eos, pad, **kwargs), pad)


def test_a_stop_string_is_looked_for_in_the_new_text_only(tiny):
    """A stop string that the prompt's end and the first new token form together does not stop the row (where
    transformers' stop_strings, which read the whole sequence, would): the response is the text after the prompt."""
    model, tokenizer = tiny
    prompt = PROMPTS[1]
    enc = _left_padded(tokenizer, [prompt])
    free = new_tokens_of(model, enc, 8, None, tokenizer.pad_token_id)[0]
    first = tokenizer.decode(free[:1])
    stop = prompt[-1] + first[:1]
    assert stop not in tokenizer.decode(free), "pick another prompt: the stop string is in the new text"
    stopped = new_tokens_of(model, enc, 8, None, tokenizer.pad_token_id, stop_strings=[stop], tokenizer=tokenizer)
    assert stopped[0] == free
    theirs = model.generate(**enc, max_new_tokens=8, pad_token_id=tokenizer.pad_token_id, eos_token_id=None,
                            stop_strings=[stop], tokenizer=tokenizer, do_sample=False)
    assert theirs.shape[1] - enc["input_ids"].shape[1] == 1  # what the old loop did: stopped by the prompt's end


@pytest.mark.parametrize("spec", [{"method": "prefix_tuning", "num_virtual_tokens": 4},
                                  {"method": "prompt_tuning", "num_virtual_tokens": 4}])
def test_prompt_learning_rows_leave_the_batch_and_decode_as_each_alone(tiny, spec):
    """A prefix in the cache (prefix tuning) and virtual token embeddings (prompt tuning): with an EOS the rows meet
    at different steps, each row's tokens equal the row decoded alone."""
    from pipeline_lib import adapters

    model, tokenizer = tiny
    torch.manual_seed(0)
    model = adapters.attach(model, spec).eval()
    enc = _left_padded(tokenizer, PROMPTS)
    pad = tokenizer.pad_token_id
    eos = new_tokens_of(model, enc, 10, None, pad)[0][2]
    batched = new_tokens_of(model, enc, 10, eos, pad)
    assert len({len(r) for r in batched}) > 1  # the rows ended apart
    for row, ids, mask in zip(batched, enc["input_ids"], enc["attention_mask"]):
        real = ids[mask.bool()][None]
        assert row == new_tokens_of(model, {"input_ids": real, "attention_mask": torch.ones_like(real)}, 10, eos,
                                    pad)[0]


def test_a_shared_prompt_prefix_and_chunked_prefill_decode_as_each_row_alone(tiny, monkeypatch):
    """Prompts that begin alike (an evaluation's template): the prefix computed once, the rest prefilled in
    chunks of rows of similar length and assembled as [prefix | padding | own tokens]; every row decodes the tokens
    it decodes alone, and the same as the one left-padded forward it replaces."""
    from pipeline_lib.evaluation import decoding

    model, tokenizer = tiny
    template = "Below is an instruction. Write a response.\n### Instruction:\n"
    prompts = [template + p for p in PROMPTS + ["What is 2 + 2?", "Name a colour", "x"]]
    enc = _left_padded(tokenizer, prompts)
    rows = [ids[m.bool()] for ids, m in zip(enc["input_ids"], enc["attention_mask"])]
    assert decoding.shared_prefix(rows) >= 8  # the template's tokens
    forwards = []
    hook = model.get_input_embeddings().register_forward_pre_hook(lambda m, a: forwards.append(tuple(a[0].shape)))
    monkeypatch.setattr(decoding, "PREFILL_ROWS", 2)
    ours = new_tokens_of(model, enc, 10, None, tokenizer.pad_token_id)
    hook.remove()
    assert forwards[0][0] == 1 and [f[0] for f in forwards[1:4]] == [2, 2, 2]  # the prefix once, then 3 chunks
    alone = [new_tokens_of(model, {"input_ids": r[None], "attention_mask": torch.ones_like(r[None])}, 10, None,
                           tokenizer.pad_token_id)[0] for r in rows]
    assert ours == alone
    monkeypatch.setattr(decoding, "SHARED_PREFILL", False)  # the one padded forward
    assert new_tokens_of(model, enc, 10, None, tokenizer.pad_token_id) == ours
