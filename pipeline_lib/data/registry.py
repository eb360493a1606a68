"""The dataset registry: every dataset the pipeline knows, as data.

Each dataset names one upstream file (pinned repository commit + sha256), the loader that parses its
format, whether it is a training or an evaluation set, and the answer type used to score it.
Mirror layout: `<repo folder>/<path>`, identical to `../shared/data` and to `resources/data/`.
"""
from __future__ import annotations

from dataclasses import dataclass

LLM_ADAPTERS = ("AGI-Edgerunners/LLM-Adapters", "816657208af4db747803f87ba40a4c71383fed7a", "LLM-Adapters")
GSM8K_REPO = ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "grade-school-math")


@dataclass(frozen=True)
class Source:
    """One upstream file at a pinned commit."""
    repo: str
    commit: str
    folder: str  # top-level folder of the mirror layout
    path: str
    sha256: str

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.path}"

    @property
    def url(self) -> str:
        return f"https://raw.githubusercontent.com/{self.repo}/{self.commit}/{self.path}"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: Source
    loader: str        # key into pipeline_lib.data.loaders.LOADERS
    split: str         # "train" or "eval"
    answer_type: str   # key into pipeline_lib.answers.EXTRACTORS


def _src(repo, path, sha256) -> Source:
    return Source(repo[0], repo[1], repo[2], path, sha256)


_LA_FILES = {
    "dataset/AQuA/test.json": "de677f5f0139340009eb01f17c0db781b4161912cd1f4efa77292f2fcf3478ee",
    "dataset/AddSub/test.json": "62a8662b1ad40879953c4df0e61883a749d03aa3fc5e71f1cdb842b816e139ff",
    "dataset/MultiArith/test.json": "a40f426807c8a563802c2a5b66bda3bcd1eba9c099038fd1199f0dd57de5fd28",
    "dataset/SVAMP/test.json": "ffed015784f738f317c5603177861d044c4fc94e09211d78b25e96d46c656e2c",
    "dataset/SingleEq/test.json": "712b15edb851c97aab42a5de106d94008f94d917366c92537ed5400a8aacb207",
    "dataset/gsm8k/test.json": "2cc616a1e0b23ea1df29370476365cde71c4e0aa823fb06cc194c5a8a9381abe",
    "dataset/mawps/test.json": "c1a708979cbf2b3df9ac4020baacf3e8e73fcf089e1de7dd1b305b810bfaa15f",
    "dataset/mawps/trainset.json": "42e631004e46e71f5e050bfd6f0af2e27c9d76315cee66cc6412d66a19b47c1a",
    "ft-training_set/math_data.json": "1d06633b4db748b7cfa38f2891f8d7b17b3636717b3188dd382045b94cf999a7",
}
_GSM_FILES = {
    "grade_school_math/data/train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
    "grade_school_math/data/test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
}
SOURCES: dict[str, Source] = {
    **{p: _src(LLM_ADAPTERS, p, h) for p, h in _LA_FILES.items()},
    **{p: _src(GSM8K_REPO, p, h) for p, h in _GSM_FILES.items()},
}


def _eval(name, folder, answer_type="number") -> DatasetSpec:
    return DatasetSpec(name, SOURCES[f"dataset/{folder}/test.json"], "llm_adapters", "eval", answer_type)


DATASETS: dict[str, DatasetSpec] = {
    d.name: d for d in [
        _eval("gsm8k", "gsm8k"),
        _eval("SVAMP", "SVAMP"),
        _eval("AQuA", "AQuA", "letter"),
        _eval("MultiArith", "MultiArith"),
        _eval("AddSub", "AddSub"),
        _eval("SingleEq", "SingleEq"),
        _eval("mawps", "mawps"),
        DatasetSpec("gsm8k_train", SOURCES["grade_school_math/data/train.jsonl"], "gsm8k_jsonl", "train", "number"),
        DatasetSpec("mawps_train", SOURCES["dataset/mawps/trainset.json"], "mawps_equations", "train", "number"),
        DatasetSpec("math_data", SOURCES["ft-training_set/math_data.json"], "llm_adapters", "train", "number"),
    ]
}
EVAL_SETS = sorted(n for n, d in DATASETS.items() if d.split == "eval")
TRAIN_SETS = sorted(n for n, d in DATASETS.items() if d.split == "train")


def get_dataset(name: str, split: str | None = None) -> DatasetSpec:
    """Look a dataset up by name; an unknown name fails listing the valid ones."""
    valid = [n for n, d in DATASETS.items() if split is None or d.split == split]
    if name not in valid:
        kind = f"{split}ing set" if split == "train" else ("evaluation set" if split else "dataset")
        raise KeyError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
    return DATASETS[name]
