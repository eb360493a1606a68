"""The dataset registry: every dataset the pipeline knows, as data.

Each dataset names one upstream file (pinned repository commit + sha256), the loader that parses its
format, whether it is a training or an evaluation set, the answer type used to score it (`auto` for a
training set whose items mix types) and, for an evaluation set, its suite (generation settings,
pipeline_lib.catalog.suites).
Mirror layout: `<repo folder>/<path>`, identical to `../shared/data` and to `resources/data/`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

GITHUB_RAW = "https://raw.githubusercontent.com"  # config data.base_url: another server with the same layout
LLM_ADAPTERS = ("AGI-Edgerunners/LLM-Adapters", "816657208af4db747803f87ba40a4c71383fed7a", "LLM-Adapters")
GSM8K_REPO = ("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "grade-school-math")


@dataclass(frozen=True)
class Source:
    """One upstream file at a pinned commit."""
    repo: str
    commit: str
    folder: str  # top-level folder of the mirror layout
    path: str
    sha256: str | None  # None: known upstream file whose checksum is not pinned yet
    origin: str | None = None  # a config dataset's own URL or local path (no repository, no mirror)

    @property
    def relpath(self) -> str:
        return f"{self.folder}/{self.path}"

    @property
    def url(self) -> str:
        return self.download_url(GITHUB_RAW)

    def download_url(self, base_url: str) -> str:
        """`<base_url>/<owner>/<repo>/<commit>/<path>` (raw GitHub's layout), or a config dataset's own URL."""
        if self.origin:
            return self.origin
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{self.path}"

    @property
    def local(self) -> bool:
        """A config dataset given by a path on this machine rather than a URL."""
        return bool(self.origin) and "://" not in self.origin


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: Source
    loader: str        # key into pipeline_lib.data.loaders.LOADERS
    split: str         # "train" or "eval"
    answer_type: str   # key into pipeline_lib.catalog.answers.ANSWER_TYPES, or "auto" (per item, from its gold)
    suite: str | None = None  # evaluation sets: key into pipeline_lib.catalog.suites.SUITES
    items: int | None = None  # items in the file (measured on the pinned file, or as upstream documents it), for
    #                           the jobs' resource estimates before any file is read; None: unknown
    published: str | None = None  # training sets: the suite of the LLM-Adapters README table trained on it
    hf: dict | None = field(default=None, compare=False)  # a `format: hf` entry: read with the datasets library

    @property
    def via_datasets(self) -> bool:
        return self.hf is not None


def default_suite(answer_type: str) -> str:
    """The suite of the answer type's sets (pipeline_lib.catalog.answers.AnswerType.suite)."""
    from pipeline_lib.catalog.answers import get_type
    return get_type(answer_type).suite


def _la(path, sha256) -> Source:
    return Source(*LLM_ADAPTERS, path, sha256)


def _eval(name, folder, sha256, items, answer_type="number") -> DatasetSpec:
    """An LLM-Adapters evaluation set, `dataset/<folder>/test.json`."""
    return DatasetSpec(name, _la(f"dataset/{folder}/test.json", sha256), "llm_adapters", "eval", answer_type,
                       default_suite(answer_type), items)


def _train(name, source, answer_type, items, loader="llm_adapters", published=None) -> DatasetSpec:
    return DatasetSpec(name, source, loader, "train", answer_type, items=items, published=published)


# One record per dataset: name, file (pinned commit + sha256; None: not pinned yet, fetch refuses it saying so),
# items in the file (counted on the pinned file, or as upstream documents it), answer type (whose suite it takes)
# and, for a training set, the LLM-Adapters README table trained on it.
BUILTIN: Mapping[str, DatasetSpec] = MappingProxyType({
    d.name: d for d in [
        _eval("gsm8k", "gsm8k", "2cc616a1e0b23ea1df29370476365cde71c4e0aa823fb06cc194c5a8a9381abe", 1319),
        _eval("SVAMP", "SVAMP", "ffed015784f738f317c5603177861d044c4fc94e09211d78b25e96d46c656e2c", 1000),
        _eval("AQuA", "AQuA", "de677f5f0139340009eb01f17c0db781b4161912cd1f4efa77292f2fcf3478ee", 254, "letter"),
        _eval("MultiArith", "MultiArith", "a40f426807c8a563802c2a5b66bda3bcd1eba9c099038fd1199f0dd57de5fd28", 600),
        _eval("AddSub", "AddSub", "62a8662b1ad40879953c4df0e61883a749d03aa3fc5e71f1cdb842b816e139ff", 395),
        _eval("SingleEq", "SingleEq", "712b15edb851c97aab42a5de106d94008f94d917366c92537ed5400a8aacb207", 508),
        _eval("mawps", "mawps", "c1a708979cbf2b3df9ac4020baacf3e8e73fcf089e1de7dd1b305b810bfaa15f", 238),
        _train("gsm8k_train", Source(*GSM8K_REPO, "grade_school_math/data/train.jsonl",
                                     "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"),
               "number", 7473, "gsm8k_jsonl"),
        _train("mawps_train", _la("dataset/mawps/trainset.json",
                                  "42e631004e46e71f5e050bfd6f0af2e27c9d76315cee66cc6412d66a19b47c1a"),
               "number", 1898, "mawps_equations"),
        # numbers and AQuA letters
        _train("math_data", _la("ft-training_set/math_data.json",
                                "1d06633b4db748b7cfa38f2891f8d7b17b3636717b3188dd382045b94cf999a7"), "auto", 3260),
        _train("math_10k", _la("ft-training_set/math_10k.json", None), "auto", 10_000, published="math"),
        # commonsense suite
        _eval("boolq", "boolq", "89df2397cbca81dc31adcc6f7f5b635821aa0565aafde46725b2b4bd39b4dfa9", 3270,
              "true_false"),
        _eval("piqa", "piqa", "3860d11b9b42e590b6b4bbc1643214d373ed0b0d4ac62fcc7bdceb8e044ad141", 1838, "solution"),
        _eval("social_i_qa", "social_i_qa", "71543f41127451945379d106ffedaef502f1c8770dff6d2f543aca85e3080b1d",
              1954, "answer5"),
        _eval("winogrande", "winogrande", "6946f5209e7114c65c6d04f8f644c5a061af20d730b1cfe158fff3dc44076fb9",
              1267, "option2"),
        _eval("ARC-Easy", "ARC-Easy", "3f32a84716ca6d57d38728bf80cc8117aecd17445c2cf29a68b571b810eb82dc", 2376,
              "answer5"),
        _eval("ARC-Challenge", "ARC-Challenge", "4a89ce368ae01a71d268d9851686738b2a0a1d84271116bab49a1dd2b48ecad7",
              1172, "answer5"),
        _eval("openbookqa", "openbookqa", "8479930f7b8a26052c78250280b5465a4016ca7fc806af440d0f37e243f3099e", 500,
              "answer5"),
        _eval("hellaswag", "hellaswag", None, 10_042, "ending4"),  # download-only: not in the mirror
        _train("boolq_train", _la("dataset/boolq/train.json",
                                  "5ccbaceebaddc69765e1c4a363632196b81851d303696672165ab59ec4e48c83"),
               "true_false", 9427),
        _train("ARC-Easy_train", _la("dataset/ARC-Easy/train.json",
                                     "6a06cece3dec32f4fb1c1b0fc29dab14be7cf3053b417290dbc6cd845359f5ff"),
               "answer5", 2251),
        _train("ARC-Challenge_train", _la("dataset/ARC-Challenge/train.json",
                                          "a9debff28aafed86a08211dc3584a3b6cb38edca8c56bb34cd5002ed54aeebfb"),
               "answer5", 1119),
        _train("openbookqa_train", _la("dataset/openbookqa/train.json",
                                       "a1e094eeea01f70c0baa880f37497b26700ae99b243927b9c529984de9b1fe90"),
               "answer5", 4957),
        # all eight commonsense sets' label kinds; as published upstream (96,529,741 bytes), not mirrored
        _train("commonsense_170k", _la("ft-training_set/commonsense_170k.json",
                                       "e606f7c16d121ff540d08d31921305786f2c95161e7ddd23893bc854ec603d70"),
               "auto", 170_000, published="commonsense"),
    ]
})
DATASETS = BUILTIN  # the built-in registry; a run's own (with its config's datasets and pins) comes from with_config
EVAL_SETS = sorted(n for n, d in BUILTIN.items() if d.split == "eval")
TRAIN_SETS = sorted(n for n, d in BUILTIN.items() if d.split == "train")
# every built-in file by its path in its repository
SOURCES: Mapping[str, Source] = MappingProxyType({d.source.path: d.source for d in BUILTIN.values()})
# the training set -> the LLM-Adapters README table (suite) trained on it
PUBLISHED_TABLES: Mapping[str, str] = MappingProxyType({n: d.published for n, d in BUILTIN.items() if d.published})


CONFIG_FOLDER = "config-datasets"  # where datasets declared in the config are placed under resources/data/


class RegistryError(KeyError):
    """The config's datasets or pins do not fit the registry (a clash, an unknown name)."""


def config_dataset(name: str, entry: dict) -> DatasetSpec:
    """A dataset declared in the config (`datasets:`): a file in the LLM-Adapters layout or grade-school-math
    JSONL, by URL or local path, pinned by sha256; or one read with the datasets library (`format: hf`: the hub at
    a pinned commit, or a local dataset file or folder). It then works like a built-in one everywhere."""
    origin = entry.get("hub") or entry.get("url") or entry.get("path")
    if entry["answer_type"] == "auto" and entry["split"] != "train":
        raise RegistryError(f"datasets.{name}: answer_type auto (per item) is for training sets; an evaluation set "
                            f"needs one answer type")
    suite = entry.get("suite") or (default_suite(entry["answer_type"]) if entry["split"] == "eval" else None)
    if entry["format"] == "hf":
        source = Source("", "", CONFIG_FOLDER, f"{name}/datasets", None, origin)
        return DatasetSpec(name, source, "hf", entry["split"], entry["answer_type"], suite, hf=dict(entry))
    source = Source("", "", CONFIG_FOLDER, f"{name}/{origin.rstrip('/').rsplit('/', 1)[-1]}", entry["sha256"], origin)
    return DatasetSpec(name, source, entry["format"], entry["split"], entry["answer_type"], suite)


def with_config(datasets: dict[str, dict], pins: dict[str, str]) -> Mapping[str, DatasetSpec]:
    """A run's registry: the built-in datasets, the config's own (`datasets:`), and the checksums it pins for
    download-only files (`data.pins`). A new mapping; the built-in registry is never changed."""
    registry, problems = dict(BUILTIN), []
    for name, entry in datasets.items():
        if name in BUILTIN:
            problems.append(f"datasets.{name}: the name is already a built-in dataset")
            continue
        try:
            registry[name] = config_dataset(name, entry)
        except RegistryError as e:
            problems.append(e.args[0])
    for name, sha256 in pins.items():
        if name not in registry:
            problems.append(f"data.pins: unknown dataset {name!r}; valid: {', '.join(sorted(registry))}")
            continue
        pinned = registry[name].source
        registry.update({n: replace(d, source=replace(pinned, sha256=sha256))
                         for n, d in registry.items() if d.source == pinned})
    if problems:
        raise RegistryError("\n  ".join(problems))
    return MappingProxyType(registry)


def sources(registry: Mapping[str, DatasetSpec]) -> dict[str, Source]:
    """Every file of the registry that fetch_data obtains, by its path in the mirror layout."""
    return {d.source.relpath: d.source for d in registry.values() if not d.via_datasets}


def get_dataset(name: str, split: str | None = None, registry: Mapping[str, DatasetSpec] = BUILTIN) -> DatasetSpec:
    """Look a dataset up by name; an unknown name fails listing the valid ones."""
    valid = [n for n, d in registry.items() if split is None or d.split == split]
    if name not in valid:
        kind = f"{split}ing set" if split == "train" else ("evaluation set" if split else "dataset")
        raise KeyError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")
    return registry[name]
