"""Train/test overlap between the training and evaluation sets of a run, on question text (instruction +
input), at three strengths:

- verbatim: identical after collapsing whitespace;
- normalised: identical after lower-casing and dropping punctuation (numbers kept), e.g. MAWPS's tokenised
  "3 . 5" spacing against the test sets' "3.5";
- near: a question whose word n-grams are at least `threshold` contained in the other side's n-grams (paraphrases,
  added sentences, a changed name).

Each level includes the previous one. Items are compared on both sides, so a policy can drop training items
(`train`) or evaluation items (`eval`)."""
from __future__ import annotations

import re
from dataclasses import dataclass

LEVELS = ("verbatim", "normalised", "near")
POLICIES = ("train", "eval", "report", "fail")


def question(record: dict) -> str:
    return f"{record['instruction']}\n{record['input']}" if record.get("input") else record["instruction"]


def verbatim_key(text: str) -> str:
    return " ".join(text.split())


def normalised_words(text: str) -> list[str]:
    return re.sub(r"[^0-9a-z]+", " ", text.lower()).split()


def ngrams(words: list[str], n: int) -> set[int]:
    """Hashed word n-grams; a text shorter than n is one gram (so short questions still match)."""
    if len(words) <= n:
        return {hash(tuple(words))}
    return {hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1)}


@dataclass
class Index:
    """One side's items, keyed for each level of matching."""
    ids: list[str]
    verbatim: list[str]
    normalised: list[str]
    grams: list[set[int]]

    @classmethod
    def build(cls, records: list[dict], n: int) -> "Index":
        texts = [question(r) for r in records]
        words = [normalised_words(t) for t in texts]
        return cls([r["id"] for r in records], [verbatim_key(t) for t in texts], [" ".join(w) for w in words],
                   [ngrams(w, n) for w in words])

    def all_grams(self) -> set[int]:
        return set().union(*self.grams) if self.grams else set()


def _matches(side: Index, other: Index, other_grams: set[int], threshold: float) -> dict[str, list[str]]:
    """Ids of `side`'s items that overlap `other`, cumulatively per level."""
    verbatim, normalised = set(other.verbatim), set(other.normalised)
    out = {level: [] for level in LEVELS}
    for i, item_id in enumerate(side.ids):
        hits = [side.verbatim[i] in verbatim, side.normalised[i] in normalised]
        hits.append(hits[1] or len(side.grams[i] & other_grams) >= threshold * len(side.grams[i]))
        hits[1] = hits[1] or hits[0]
        hits[2] = hits[2] or hits[1]
        for level, hit in zip(LEVELS, hits):
            if hit:
                out[level].append(item_id)
    return out


def overlap(train: Index, evaluation: Index, threshold: float,
            train_grams: set[int] | None = None, eval_grams: set[int] | None = None) -> dict:
    """Overlap of one (training, evaluation) pair: counts and ids per level, on both sides."""
    train_grams = train.all_grams() if train_grams is None else train_grams
    eval_grams = evaluation.all_grams() if eval_grams is None else eval_grams
    eval_hits = _matches(evaluation, train, train_grams, threshold)
    train_hits = _matches(train, evaluation, eval_grams, threshold)
    return {
        "train_items": len(train.ids), "eval_items": len(evaluation.ids),
        **{level: len(eval_hits[level]) for level in LEVELS},  # evaluation items seen in training
        "eval_ids": eval_hits, "train_ids": train_hits,
    }


def matrix(train_sets: dict[str, list[dict]], eval_sets: dict[str, list[dict]], n: int, threshold: float) -> dict:
    """Every (training, evaluation) pair; each side's index and n-gram set is built once. `n` and `threshold`: the
    config's `contamination.ngram` and `.threshold` (their defaults are the schema's)."""
    trains = {name: Index.build(records, n) for name, records in train_sets.items()}
    evals = {name: Index.build(records, n) for name, records in eval_sets.items()}
    train_grams = {name: idx.all_grams() for name, idx in trains.items()}
    eval_grams = {name: idx.all_grams() for name, idx in evals.items()}
    pairs = {t: {e: overlap(trains[t], evals[e], threshold, train_grams[t], eval_grams[e]) for e in evals}
             for t in trains}
    return {"ngram": n, "threshold": threshold, "levels": list(LEVELS), "pairs": pairs}


def flagged(result: dict, level: str, side: str, name: str) -> set[str]:
    """Ids of one set's items that overlap any set on the other side at `level` (side: 'train' or 'eval')."""
    pairs = result["pairs"]
    if side == "train":
        return {i for e in pairs.get(name, {}).values() for i in e["train_ids"][level]}
    return {i for t in pairs.values() if name in t for i in t[name]["eval_ids"][level]}


def table(result: dict, level: str) -> list[dict]:
    """Rows of training sets, columns of evaluation sets: 'overlapping / total' evaluation items."""
    return [{"training set": t, **{e: f"{p[level]}/{p['eval_items']}" for e, p in evals.items()}}
            for t, evals in result["pairs"].items()]
