"""Every record of every file is checked before normalisation: a malformed file stops with an error naming
the file, the item index and the field."""
import json

import pytest

from pipeline_lib.catalog.datasets import DATASETS
from pipeline_lib.data.loaders import LOADERS, DataError

GOOD = {"instruction": "How many apples?", "input": "", "output": "Two. The answer is 2.", "answer": "2"}


def llm_adapters(*items):
    return json.dumps([GOOD, *items])


def gsm_jsonl(*items):
    good = {"question": "How many?", "answer": "1 + 1 = 2\n#### 2"}
    return "\n".join(json.dumps(i) if not isinstance(i, str) else i for i in [good, *items]) + "\n"


def mawps(*items):
    good = {"original_text": "How many?", "equation": "X=(1+1)", "ans": 2}
    return json.dumps([good, *items])


# (dataset whose loader and answer type apply, file content, expected message)
VARIANTS = [
    ("gsm8k", "{not json", r"invalid JSON at line 1"),
    ("gsm8k", '{"a": 1}', r"expected a JSON list of items, got dict"),
    ("gsm8k", llm_adapters(7), r"item 1: expected an object, got int"),
    ("gsm8k", llm_adapters({k: v for k, v in GOOD.items() if k != "answer"}), r"item 1: missing field 'answer'"),
    ("gsm8k", llm_adapters({k: v for k, v in GOOD.items() if k != "instruction"}), r"item 1: missing field 'instruction'"),
    ("gsm8k", llm_adapters({k: v for k, v in GOOD.items() if k != "input"}), r"item 1: missing field 'input'"),
    ("gsm8k", llm_adapters({**GOOD, "instruction": 5}), r"item 1: field 'instruction' should be str, got int"),
    ("gsm8k", llm_adapters({**GOOD, "output": None}), r"item 1: field 'output' should be str, got NoneType"),
    ("gsm8k", llm_adapters({**GOOD, "answer": True}), r"item 1: field 'answer' should be str/int/float, got bool"),
    ("gsm8k", llm_adapters({**GOOD, "answer": [2]}), r"item 1: field 'answer' should be str/int/float, got list"),
    ("gsm8k", llm_adapters({**GOOD, "answer": " "}), r"item 1: field 'answer' is empty"),
    ("gsm8k", llm_adapters({**GOOD, "answer": "seven"}), r"item 1: field 'answer' should be a number, got 'seven'"),
    ("gsm8k", llm_adapters({**GOOD, "instruction": "  "}), r"item 1: field 'instruction' is empty"),
    ("AQuA", json.dumps([{**GOOD, "answer": "B"}, {**GOOD, "answer": "F"}]), r"item 1: field 'answer' should be one of A/B/C/D/E, got 'F'"),
    ("boolq", json.dumps([{**GOOD, "answer": "true"}, {**GOOD, "answer": "maybe"}]), r"item 1: field 'answer' should be one of true/false, got 'maybe'"),
    ("gsm8k", llm_adapters({**GOOD, "id": "a"}, {**GOOD, "id": "a"}), r"item 2: field 'id' 'a' duplicates item 1"),
    ("gsm8k", llm_adapters({**GOOD, "id": 1.5}), r"item 1: field 'id' should be str/int, got float"),
    ("gsm8k_train", gsm_jsonl("{oops"), r"json:2: invalid JSON line"),
    ("gsm8k_train", gsm_jsonl({"question": "q", "answer": "no final answer"}), r"item 1: field 'answer' has no '#### <number>'"),
    ("gsm8k_train", gsm_jsonl({"question": "q", "answer": "x\n#### lots"}), r"item 1: field 'answer' should be a number"),
    ("gsm8k_train", gsm_jsonl({"answer": "x\n#### 2"}), r"item 1: missing field 'question'"),
    ("mawps_train", mawps({"original_text": "q", "equation": "X=1"}), r"item 1: missing field 'ans'"),
    ("mawps_train", mawps({"original_text": "q", "equation": 3, "ans": 1}), r"item 1: field 'equation' should be str"),
]


@pytest.mark.parametrize("dataset, content, message", VARIANTS, ids=[f"{i:02d}-{v[0]}" for i, v in enumerate(VARIANTS)])
def test_malformed_file_is_refused_naming_file_item_and_field(tmp_path, dataset, content, message):
    spec = DATASETS[dataset]
    path = tmp_path / "upstream-file.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        LOADERS[spec.loader](path, spec)
    assert str(path) in str(err.value)


def test_every_loader_meets_malformed_input():
    from pipeline_lib.data.loaders import LOADERS

    assert {DATASETS[dataset].loader for dataset, _, _ in VARIANTS} == set(LOADERS)


def test_the_good_items_of_each_format_load(tmp_path):
    for dataset, content in [("gsm8k", llm_adapters()), ("gsm8k_train", gsm_jsonl()), ("mawps_train", mawps())]:
        path = tmp_path / f"{dataset}.json"
        path.write_text(content)
        assert len(LOADERS[DATASETS[dataset].loader](path, DATASETS[dataset])) == 1


@pytest.mark.parametrize("dataset, content", [("gsm8k", llm_adapters), ("gsm8k_train", gsm_jsonl),
                                              ("mawps_train", mawps)])
def test_a_file_not_in_utf8_or_with_a_bom_is_refused_naming_file_and_line(tmp_path, dataset, content):
    """A Latin-1 file (a bare UnicodeDecodeError named no file) and a file beginning with a byte-order mark."""
    spec = DATASETS[dataset]
    latin = tmp_path / "latin1.json"
    latin.write_bytes(content({"instruction": "Café?", "input": "", "output": "Oui. The answer is 2.",
                               "answer": "2"} if dataset == "gsm8k" else
                              '{"question": "Café?", "answer": "#### 2"}' if dataset == "gsm8k_train" else
                              {"original_text": "Café?", "equation": "X=2", "ans": 2}).replace("\\u00e9", "é")
                      .encode("latin-1"))
    line = 2 if dataset == "gsm8k_train" else 1
    with pytest.raises(DataError, match=rf"latin1.json:{line}: not UTF-8 \(byte 0xe9 at offset \d+"):
        LOADERS[spec.loader](latin, spec)
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + content().encode())
    with pytest.raises(DataError, match=r"bom.json:1: begins with a UTF-8 byte-order mark"):
        LOADERS[spec.loader](bom, spec)
