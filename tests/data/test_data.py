import json

import pytest

from pipeline_lib.catalog.datasets import DATASETS, EVAL_SETS, SOURCES, TRAIN_SETS, get_dataset
from pipeline_lib.data.fetch import FetchError, fetch
from pipeline_lib.data.loaders import LOADERS, DataError, format_number
from pipeline_lib.data.prepare import normalize, select, subsample

NOT_MIRRORED = {"commonsense_170k"}  # pinned, but too large for the mirror
# every pinned file the mirror holds; each test below checks the registry's item count on it
MIRRORED = sorted(n for n, d in DATASETS.items() if d.source.sha256 and n not in NOT_MIRRORED)
# math_data: 3 items have an empty response: kept in the count, dropped at training selection


def prepare(name, raw, out, limit=None, seed=0):
    """normalize + select, as the pipeline's two rules do (no decontamination)."""
    spec = DATASETS[name]
    normalize(spec, raw, out.with_suffix(".full"))
    select(name, spec.split, out.with_suffix(".full"), out, limit, seed)
    return len(out.read_text().splitlines())


def test_registry_covers_the_issue_sets():
    assert set(EVAL_SETS) == {"gsm8k", "SVAMP", "AQuA", "MultiArith", "AddSub", "SingleEq", "mawps", "boolq", "piqa",
                              "social_i_qa", "winogrande", "ARC-Easy", "ARC-Challenge", "openbookqa", "hellaswag"}
    assert set(TRAIN_SETS) >= {"gsm8k_train", "mawps_train", "math_data", "boolq_train", "commonsense_170k"}
    with pytest.raises(KeyError, match=r"unknown evaluation set 'gsm8k_train'; valid: AQuA, ARC-Challenge"):
        get_dataset("gsm8k_train", "eval")


def test_the_mirror_holds_every_pinned_file_but_the_unmirrored_one(data_mirror):
    pinned = {n for n, d in DATASETS.items() if d.source.sha256}
    assert {n for n in pinned if not (data_mirror / DATASETS[n].source.relpath).is_file()} == NOT_MIRRORED
    assert len(MIRRORED) == 21


@pytest.mark.parametrize("name", MIRRORED)
def test_every_dataset_fetches_verifies_and_normalizes(name, data_mirror, tmp_path):
    spec = DATASETS[name]
    raw = fetch(spec.source, tmp_path / "raw" / spec.source.relpath, mirror=data_mirror)
    records = LOADERS[spec.loader](raw, spec)
    assert len(records) == spec.items
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        assert set(r) == {"id", "dataset", "instruction", "input", "output", "answer", "answer_type"}
        assert r["instruction"].strip()
        assert spec.answer_type in (r["answer_type"], "auto")
        if spec.split == "train" and name != "math_data":
            assert r["output"].strip()
        from pipeline_lib.catalog.answers import get_type
        assert get_type(r["answer_type"]).valid_gold(r["answer"])


def test_gsm8k_train_becomes_paper_style_response(data_mirror, tmp_path):
    spec = DATASETS["gsm8k_train"]
    records = LOADERS[spec.loader](fetch(spec.source, tmp_path / "f", mirror=data_mirror), spec)
    first = records[0]
    assert first["output"] == ("Natalia sold 48/2 = 24 clips in May.\n"
                               "Natalia sold 48+24 = 72 clips altogether in April and May.\nThe answer is 72.")
    assert first["answer"] == "72"
    assert not any("<<" in r["output"] or "####" in r["output"] for r in records)
    assert all(r["output"].endswith(f"The answer is {format_number(float(r['answer']))}.") for r in records)


def test_math_data_mixes_number_and_letter_answers(data_mirror, tmp_path):
    spec = DATASETS["math_data"]
    records = LOADERS[spec.loader](fetch(spec.source, tmp_path / "f", mirror=data_mirror), spec)
    types = [r["answer_type"] for r in records]
    assert types.count("letter") == 203 and types.count("number") == 3260 - 203


MIXED = [  # one item of each label kind of upstream's commonsense_170k, and math_data's numbers and letters
    ("Please answer the following question with true or false. Question: is the sky blue?", "true"),
    ("Please choose the correct solution to the question. Solution1: a Solution2: b", "solution2"),
    ("Please choose the correct answer to the question. Answer1: a Answer2: b Answer3: c", "answer3"),
    ("Please choose the correct ending to complete the given sentence. Ending1: a Ending4: d", "ending4"),
    ("Please choose the correct answer to fill in the blank. Option1: a Option2: b", "option1"),
    ("Question: Which is a mammal? Answer1: cat Answer2: trout Answer3: frog Answer4: crow", "answer1"),
    ("Fact: ... Question: ... Answer1: a Answer2: b Answer3: c Answer4: d Answer5: e", "answer5"),
    ("Please answer the following question with true or false. Question: is ice hot?", "false"),
    ("How many apples are 2 and 3?", "5.0"), ("How much is 1,200 and 34?", "1,234"),
    ("Which is prime? Answer Choices: (A) 4 (B) 6 (C) 7 (D) 8 (E) 9", "C"),
]


def test_a_training_set_that_mixes_answer_types_takes_each_items_own(tmp_path):
    from pipeline_lib.catalog.datasets import DatasetSpec

    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([{"instruction": q, "input": "", "output": f"the correct answer is {a}", "answer": a}
                                for q, a in MIXED]))
    spec = DatasetSpec("mixed", None, "llm_adapters", "train", "auto")
    types = [r["answer_type"] for r in LOADERS["llm_adapters"](path, spec)]
    assert types == ["true_false", "solution", "answer5", "ending4", "option2", "answer5", "answer5", "true_false",
                     "number", "number", "letter"]
    assert [r["answer"] for r in LOADERS["llm_adapters"](path, spec)][9] == "1234"
    path.write_text(json.dumps([{"instruction": "q", "input": "", "output": "x", "answer": "maybe"}]))
    with pytest.raises(DataError, match=r"item 0: field 'answer' should be a number; one of A/B/C/D/E; one of "
                                        r"true/false; .* got 'maybe'"):
        LOADERS["llm_adapters"](path, spec)


def test_upstream_mixed_training_sets_take_answer_types_per_item():
    assert {DATASETS[n].answer_type for n in ("commonsense_170k", "math_data", "math_10k")} == {"auto"}
    assert DATASETS["commonsense_170k"].source.sha256 == \
        "e606f7c16d121ff540d08d31921305786f2c95161e7ddd23893bc854ec603d70"  # as published upstream


def test_training_selection_drops_items_without_response(data_mirror, tmp_path):
    raw = data_mirror / DATASETS["math_data"].source.relpath
    assert prepare("math_data", raw, tmp_path / "m.jsonl") == 3257


def test_mawps_train_states_the_equation(data_mirror, tmp_path):
    spec = DATASETS["mawps_train"]
    first = LOADERS[spec.loader](fetch(spec.source, tmp_path / "f", mirror=data_mirror), spec)[0]
    assert first["output"] == "((22.0-14.0)/4.0) = 2. The answer is 2."


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path):
    source = SOURCES["dataset/gsm8k/test.json"]
    mirror = tmp_path / "mirror"
    (mirror / source.relpath).parent.mkdir(parents=True)
    (mirror / source.relpath).write_text("[]")
    dest = tmp_path / "out" / "test.json"
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(source, dest, mirror=mirror)
    assert not dest.exists()
    with pytest.raises(FetchError, match="not found in data mirror"):
        fetch(SOURCES["dataset/AQuA/test.json"], dest, mirror=mirror)


def test_download_only_sets_are_refused_clearly(tmp_path):
    with pytest.raises(FetchError, match="hellaswag/test.json: download-only .* no pinned sha256"):
        fetch(DATASETS["hellaswag"].source, tmp_path / "h.json")
    assert not (tmp_path / "h.json").exists()


def test_failed_download_says_what_to_do(tmp_path):
    bad = SOURCES["dataset/gsm8k/test.json"].__class__("x/y", "0" * 40, "y", "p.json", "0" * 64)
    import urllib.request
    real = urllib.request.urlopen
    urllib.request.urlopen = lambda *a, **k: (_ for _ in ()).throw(OSError("no network"))
    try:
        with pytest.raises(FetchError, match="data.mirror"):
            fetch(bad, tmp_path / "f")
    finally:
        urllib.request.urlopen = real


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    ('{"a": 1}', "expected a JSON list"),
    ('[{"instruction": "q", "input": "", "output": ""}]', "item 0: missing field 'answer'"),
    ('[{"instruction": 5, "input": "", "output": "", "answer": "1"}]', "item 0: field 'instruction' should be str"),
    ('[{"instruction": "q", "input": "", "output": "", "answer": "seven"}]', "item 0: field 'answer' should be a number"),
    ('[{"instruction": " ", "input": "", "output": "", "answer": "1"}]', "item 0: field 'instruction' is empty"),
    ('[1]', "item 0: expected an object"),
])
def test_malformed_files_name_file_item_and_field(tmp_path, content, message):
    path = tmp_path / "test.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        LOADERS["llm_adapters"](path, DATASETS["gsm8k"])
    assert str(path) in str(err.value)


def test_option_gold_must_be_a_label(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"instruction": "q", "input": "", "output": "", "answer": "maybe"}]))
    with pytest.raises(DataError, match="item 0: field 'answer' should be one of true/false, got 'maybe'"):
        LOADERS["llm_adapters"](path, DATASETS["boolq"])


def test_letter_gold_must_be_a_choice(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"instruction": "q", "input": "", "output": "", "answer": "F"}]))
    with pytest.raises(DataError, match="item 0: field 'answer' should be one of A/B/C/D/E, got 'F'"):
        LOADERS["llm_adapters"](path, DATASETS["AQuA"])


def test_subsample_is_seeded_ordered_and_per_dataset():
    records = [{"i": i} for i in range(100)]
    a = subsample(records, 10, 1, "x")
    assert a == subsample(records, 10, 1, "x")
    assert [r["i"] for r in a] == sorted(r["i"] for r in a)
    assert a != subsample(records, 10, 1, "y") and a != subsample(records, 10, 2, "x")
    assert subsample(records, None, 1, "x") == records and subsample(records, 500, 1, "x") == records


def test_prepare_writes_normalized_jsonl(data_mirror, tmp_path):
    raw = data_mirror / SOURCES["dataset/AQuA/test.json"].relpath
    assert prepare("AQuA", raw, tmp_path / "aqua.jsonl", limit=5, seed=3) == 5
    lines = [json.loads(line) for line in (tmp_path / "aqua.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(r["answer_type"] == "letter" for r in lines)


def test_mixture_concatenates_prepared_sets(data_mirror, tmp_path):
    from pipeline_lib.data.prepare import mix

    for name in ["boolq_train", "openbookqa_train"]:
        raw = data_mirror / DATASETS[name].source.relpath
        prepare(name, raw, tmp_path / f"{name}.jsonl", limit=3, seed=1)
    assert mix([tmp_path / "boolq_train.jsonl", tmp_path / "openbookqa_train.jsonl"], tmp_path / "mix.jsonl") == 6
    lines = [json.loads(line) for line in (tmp_path / "mix.jsonl").read_text().splitlines()]
    assert [r["dataset"] for r in lines] == ["boolq_train"] * 3 + ["openbookqa_train"] * 3
    assert {r["answer_type"] for r in lines} == {"true_false", "answer5"}
