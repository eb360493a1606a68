"""The jobs as library calls (what the rules' scripts run): a fine-tune writes a complete, labelled, checksummed
adapter; an evaluation of it writes predictions and a labelled score that agree."""
import json

from helpers import settings
from pipeline_lib.evaluation.jobs import evaluate
from pipeline_lib.planning import paths
from pipeline_lib.runtime.files import read_jsonl, verify_manifest, write_jsonl
from pipeline_lib.training.job import finetune

RECORDS = [{"id": f"t-{i}", "dataset": "t", "instruction": f"What is {i} + {i}?", "input": "",
            "output": f"{i} + {i} = {2 * i}. The answer is {2 * i}.", "answer": str(2 * i), "answer_type": "number"}
           for i in range(8)]
LABELS = {"model": "tiny-llama", "adapter": "lora", "train_set": "t"}


def test_finetune_then_evaluate(tiny_dir, tmp_path):
    data = tmp_path / "train.jsonl"
    write_jsonl(data, RECORDS)
    out = str(tmp_path / "adapter")
    spec = {"method": "lora", "r": 2, "target_modules": ["q_proj"]}
    training = {"max_steps": 2, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 0, "checkpoint_every": 1}
    metrics = finetune(str(tiny_dir), str(data), out, spec, training, LABELS)
    verify_manifest(out, required=True)
    saved = json.loads(open(paths.metrics(out)).read())
    assert saved == metrics and {k: saved[k] for k in LABELS} == LABELS and saved["adapter_spec"] == spec
    assert len(saved["loss"]) == 2 and saved["training"]["max_steps"] == 2
    assert not (tmp_path / "adapter.checkpoint").exists()  # removed once the adapter is written

    predictions, score = str(tmp_path / "p.jsonl"), str(tmp_path / "s.json")
    evaluation = settings({"batch_size": 4, "max_new_tokens": 4}, "math")
    sets = [{"protocol": evaluation["protocol"], "dataset": "t", "data": str(data), "predictions": predictions,
             "score": score}]
    [result] = evaluate(str(tiny_dir), out, sets, [evaluation], LABELS)
    written = read_jsonl(predictions)
    assert [p["id"] for p in written] == [r["id"] for r in RECORDS]
    assert json.loads(open(score).read()) == result and result["dataset"] == "t"
    assert result["correct"] == sum(p["correct"] for p in written) and result["n"] == 8
    # numbers have no chance level; every response without a number to extract is counted
    assert result["chance"] is None and result["no_answer"] == sum(p["extracted"] is None for p in written)
    assert not (tmp_path / "p.jsonl.partial").exists()


def test_a_trial_out_of_memory_is_retried_before_it_counts_as_the_methods_failure(tiny_dir, tmp_path, monkeypatch):
    """Memory a neighbour held is not the method's failure: a trial that runs out of memory waits (backing off) and
    tries again; only after OOM_RETRIES more attempts is it recorded as failed, the record saying how often it tried.
    A diverged loss is not retried (it would diverge again)."""
    import torch

    from pipeline_lib.training import job, loop

    data = tmp_path / "train.jsonl"
    write_jsonl(data, RECORDS)
    spec = {"method": "lora", "r": 2, "target_modules": ["q_proj"]}
    training = {"max_steps": 1, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 0, "checkpoint_every": None}
    waits, real = [], loop.train
    monkeypatch.setattr(job.time, "sleep", waits.append)
    failures = iter([torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")])

    def flaky(*args, **kwargs):
        for error in failures:
            raise error
        return real(*args, **kwargs)
    monkeypatch.setattr(loop, "train", flaky)
    metrics = finetune(str(tiny_dir), str(data), str(tmp_path / "once"), spec, training, LABELS,
                       allow_failure=True)
    assert not metrics.get("failed") and len(metrics["retried"]) == 1 and waits == [job.OOM_BACKOFF_S]

    monkeypatch.setattr(loop, "train", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")))
    waits.clear()
    failed = finetune(str(tiny_dir), str(data), str(tmp_path / "never"), spec, training, LABELS, allow_failure=True)
    assert failed["attempts"] == job.OOM_RETRIES + 1 and "OutOfMemoryError" in failed["failed"]
    assert waits == [job.OOM_BACKOFF_S * 2 ** i for i in range(job.OOM_RETRIES)]

    from pipeline_lib.training.loop import TrainingError

    monkeypatch.setattr(loop, "train", lambda *a, **k: (_ for _ in ()).throw(TrainingError("loss is nan")))
    waits.clear()
    diverged = finetune(str(tiny_dir), str(data), str(tmp_path / "nan"), spec, training, LABELS, allow_failure=True)
    assert diverged["attempts"] == 1 and waits == []


def test_a_checkpoint_is_resumed_only_by_the_same_code_on_the_same_model_content(tiny_dir, tmp_path, monkeypatch,
                                                                                 capsys):
    """A fine-tune stopped after its checkpoint resumes from it when nothing changed, even from the model moved
    elsewhere; after the stage's code changed (PEFT_BENCH_CODE), or a weight file was replaced in place by one of
    the same size, it starts again from step 0, saying why."""
    import shutil

    import pytest
    from safetensors.torch import load_file, save_file

    data = tmp_path / "train.jsonl"
    write_jsonl(data, RECORDS)
    spec = {"method": "lora", "r": 2, "target_modules": ["q_proj"]}
    training = {"max_steps": 3, "batch_size": 4, "micro_batch_size": 2, "warmup_steps": 0, "checkpoint_every": 1}

    class Stop(Exception):
        pass

    def stop(step):
        raise Stop

    def resumed_from(model, code):
        out = str(tmp_path / "adapter")
        shutil.rmtree(out, ignore_errors=True)
        monkeypatch.setenv("PEFT_BENCH_CODE", code)
        return finetune(str(model), str(data), out, spec, training, LABELS)["resumed_from_step"]

    def stopped_at_1(model, code):
        monkeypatch.setenv("PEFT_BENCH_CODE", code)
        with pytest.raises(Stop):
            finetune(str(model), str(data), str(tmp_path / "adapter"), spec, training, LABELS, on_checkpoint=stop)

    model = tmp_path / "model"
    shutil.copytree(tiny_dir, model)
    stopped_at_1(model, "a" * 16)
    moved = tmp_path / "moved"
    model.rename(moved)
    assert resumed_from(moved, "a" * 16) == 1  # same code, same content, another path

    stopped_at_1(moved, "a" * 16)
    assert resumed_from(moved, "b" * 16) == 0  # the stage's code changed
    assert "written for other inputs" in capsys.readouterr().err

    stopped_at_1(moved, "a" * 16)
    weights = moved / "model.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1  # same shape and dtype: a file of the same size
    size = weights.stat().st_size
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size == size
    assert resumed_from(moved, "a" * 16) == 0  # the weights changed in place


def test_a_row_pools_its_sets_and_keeps_the_sets_it_made(tiny_dir, tmp_path, monkeypatch):
    """One evaluation job per row: its sets' prompts decoded together give each set the predictions it gets alone;
    re-run with a set added, it generates that set only and leaves the others' files as they were; a set whose
    settings changed is made again."""
    from pipeline_lib.evaluation import decoding
    from pipeline_lib.evaluation import generate as generate_module

    evaluation = settings({"batch_size": 3, "max_new_tokens": 4}, "math")
    sets = []
    for name, part in (("a", RECORDS[:5]), ("b", RECORDS[5:]), ("c", RECORDS[2:6])):
        write_jsonl(tmp_path / f"{name}.jsonl", [{**r, "dataset": name} for r in part])
        sets.append({"protocol": evaluation["protocol"], "dataset": name, "data": str(tmp_path / f"{name}.jsonl"),
                     "predictions": str(tmp_path / f"{name}.pred.jsonl"), "score": str(tmp_path / f"{name}.json")})
    alone = {}
    for one in sets:
        moved = {**one, "predictions": one["predictions"] + ".alone", "score": one["score"] + ".alone"}
        evaluate(str(tiny_dir), None, [moved], [evaluation], LABELS)
        alone[one["dataset"]] = read_jsonl(moved["predictions"])
    prompts = []  # every prompt the decoder is given

    def counted(model, tokenizer, given, **options):
        prompts.extend(given)
        return decoding.generate(model, tokenizer, given, **options)
    monkeypatch.setattr(generate_module, "generate", counted)

    scores = evaluate(str(tiny_dir), None, sets[:2], [evaluation] * 2, LABELS)
    assert len(prompts) == 8  # both sets in one decoding
    assert [s["dataset"] for s in scores] == ["a", "b"] and all(s["decoded_with_sets"] == 2 for s in scores)
    for one in sets[:2]:
        assert read_jsonl(one["predictions"]) == alone[one["dataset"]]
    made = {one["dataset"]: (open(one["score"], "rb").read(), open(one["predictions"], "rb").read())
            for one in sets[:2]}

    prompts.clear()
    grown = evaluate(str(tiny_dir), None, sets, [evaluation] * 3, LABELS)
    assert len(prompts) == 4 and read_jsonl(sets[2]["predictions"]) == alone["c"]  # the new set alone
    for one in sets[:2]:
        assert (open(one["score"], "rb").read(), open(one["predictions"], "rb").read()) == made[one["dataset"]]
    assert grown[0] == scores[0] and grown[1] == scores[1]

    prompts.clear()
    longer = {**evaluation, "max_new_tokens": 5}
    evaluate(str(tiny_dir), None, sets, [evaluation, longer, evaluation], LABELS)
    assert len(prompts) == 3  # set b under its new settings, nothing else
    assert json.loads(open(sets[1]["score"]).read())["evaluation"]["max_new_tokens"] == 5
