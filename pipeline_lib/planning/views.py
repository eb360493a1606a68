"""The run plan's views by stage: each a small frozen object holding what the rules of one stage read, built once by
`planning.plan.prepare`. A rule of the data stage reads `PLAN.data`, a fine-tune `PLAN.training`, a tuning rule
`PLAN.tuning`, an evaluation `PLAN.evaluation`, a cost job `PLAN.costs`; what every model-loading job shares (labels,
model options, GPUs) stays on the RunPlan itself. Importable without torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from pipeline_lib.catalog import answers, protocols
from pipeline_lib.catalog import datasets as data_registry

UNKNOWN_ITEMS = 10_000  # a dataset whose size is unknown before preparation, for the resource estimates
NOT_OPTIONS = ("training", "seeds", "published_as", "tuned_from")  # keys of an adapter entry that are not options
SPEC_KEYS = ("name", "loader", "split", "answer_type", "suite")   # what a data job needs of a dataset's spec


def thawed(value):
    """A plain (JSON-serialisable) copy of a frozen view."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class DataPlan:
    """Data preparation: where files come from, the contamination check, each prepared split's selection."""
    datasets: Mapping[str, data_registry.DatasetSpec]
    settings: Mapping              # config `data` (mirror, base_url, seed, limits)
    train_sets: tuple[str, ...]
    eval_sets: tuple[str, ...]
    train_parts: tuple[str, ...]   # the training datasets, mixtures expanded, each once
    mixtures: Mapping[str, tuple]  # mixture -> its parts
    policy: str                    # config `decontaminate`
    contamination: Mapping         # config `contamination` (ngram, threshold, level)
    validation_size: int | None    # tuning: the items of each training set's validation split; None without tuning

    def origin(self) -> dict:
        """Where the data files come from: a mirror or the base URL (not a job setting: the bytes are verified)."""
        return {"mirror": self.settings["mirror"], "base_url": self.settings["base_url"]}

    def spec(self, name: str) -> dict:
        """What a normalize or load job needs of a dataset's registry entry."""
        return {k: getattr(self.datasets[name], k) for k in SPEC_KEYS}

    def mixture_parts(self, train_set: str) -> list[str]:
        return list(self.mixtures.get(train_set, [train_set]))

    def contamination_options(self) -> dict:
        c = self.contamination
        return {"ngram": c["ngram"], "threshold": c["threshold"], "level": c["level"], "policy": self.policy}

    def waits_for_contamination(self, split: str) -> bool:
        """Only the split the policy drops from depends on the run's other sets; under `fail`, training waits
        for the check; a validation split always (it never holds a test set's question, whatever the policy)."""
        return split == "val" or self.policy in (split, "fail" if split == "train" else None)

    def selection_options(self, name: str, split: str) -> dict:
        """How a prepared set is selected from the normalized one: its limit (a validation split: its size), the
        sampling seed, the policy."""
        limit = self.validation_size if split == "val" else self.limit(name, split)
        return {"limit": limit, "seed": self.settings["seed"], "policy": self.policy,
                "level": self.contamination["level"]}

    def holds_out_validation(self, name: str, split: str) -> bool:
        """Under tuning, every training set's fine-tunes train without its validation split."""
        return self.validation_size is not None and split == "train" and name in self.train_parts

    def limit(self, name: str, split: str) -> int | None:
        return self.settings["limits"].get(name, self.settings["train_limit" if split == "train" else "eval_limit"])

    def estimated_items(self, name: str, split: str) -> int:
        """Items a job will see, before any file is read: the configured limit, else the set's known size
        (a mixture: its parts')."""
        known = sum(self.datasets[p].items or UNKNOWN_ITEMS for p in self.mixture_parts(name))
        limit = self.limit(name, split)
        return min(limit, known) if limit else known

    def suites_of(self, train_set: str) -> list[str]:
        """The suites a training set's parts belong to: their answer types' suites (a mixed-type set: the suite of
        the table it was published for)."""
        suites = set()
        for part in self.mixture_parts(train_set):
            spec = self.datasets[part]
            if spec.suite:
                suites.add(spec.suite)
            elif spec.answer_type != answers.AUTO:
                suites.add(answers.get_type(spec.answer_type).suite)
            else:
                suites.add(spec.published or "math")
        return sorted(suites)


@dataclass(frozen=True)
class TrainingPlan:
    """Fine-tunes: each run's adapter and training settings."""
    adapters: Mapping[str, Mapping]      # every adapter: the config's, the sweep members, trials and tuned ones
    runs: Mapping[str, tuple]            # run name -> (adapter, seed or None): one fine-tune each
    settings: Mapping[str, Mapping]      # run -> its training settings (global, the adapter's own, the seed)
    trials: frozenset[str]               # tuning trials' run names
    tuned: Mapping[str, str]             # `<adapter>.tuned` -> the adapter it tunes

    def adapter_spec(self, run: str) -> dict:
        """The run's adapter: its method and options, without its training overrides and seeds."""
        return self.adapter_options(self.runs[run][0])

    def adapter_options(self, adapter: str) -> dict:
        """An adapter's method and options (by adapter name: with seeds, its runs are named apart)."""
        return {k: thawed(v) for k, v in self.adapters[adapter].items() if k not in NOT_OPTIONS}

    def train_config(self, run: str) -> dict:
        return thawed(self.settings[run])

    def is_trial(self, run: str) -> bool:
        """A tuning trial: its failure (a diverged loss, memory) is recorded for the selection, not fatal."""
        return run in self.trials

    def tunes(self, run: str) -> str | None:
        """For a run of a tuned adapter (`<adapter>.tuned`, or one seed of it): the adapter it tunes; else None."""
        return self.tuned.get(self.runs[run][0]) if run in self.runs else None


@dataclass(frozen=True)
class EvaluationPlan:
    """Evaluations: the sets, the protocols that apply to each, each job's settings."""
    eval_sets: tuple[str, ...]
    protocols: tuple[str, ...]
    suites: Mapping[str, str]              # evaluation set -> its suite
    answer_types: Mapping[str, str]        # evaluation set -> its answer type
    configs: Mapping[tuple, Mapping]       # (evaluation set, protocol) -> its evaluation's settings

    def protocols_for(self, dataset: str) -> list[str]:
        """The run's protocols that apply to the set's suite (the log-likelihood ones: commonsense only)."""
        return [p for p in self.protocols if protocols.get(p).applies(self.suites[dataset])]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """(protocol, evaluation set) of every evaluation of a row: the same for every row of the run, so one job
        per row evaluates them all (rules/evaluate.smk)."""
        return [(p, d) for d in self.eval_sets for p in self.protocols_for(d)]

    def settings(self, dataset: str, protocol: str) -> dict:
        """One evaluation job's settings (pipeline_lib.catalog.protocols)."""
        if protocol not in self.protocols_for(dataset):
            raise ValueError(f"{dataset} is not evaluated under {protocol!r} in this run; its protocols: "
                             f"{', '.join(self.protocols_for(dataset)) or 'none'}")
        return thawed(self.configs[(dataset, protocol)])

    def paper_rules(self) -> dict[str, str]:
        """Evaluation set -> the extraction rule upstream scored it by (its answer type's `paper` rule)."""
        return {d: answers.get_type(self.answer_types[d]).paper for d in self.eval_sets}


@dataclass(frozen=True)
class TuningPlan:
    """Tuning (config `tuning`): the trials, the selections, how a trial is scored on its validation split."""
    settings: Mapping | None            # config `tuning`; None: the run does not tune
    trials: tuple                       # every trial (planning.tuning.Trial): an adapter of its own, fine-tuned once
    tuned: Mapping[str, str]            # `<adapter>.tuned` -> the adapter it tunes
    validation: Mapping[str, Mapping]   # training set -> how its trials are scored (metric, protocol settings)

    def trials_of(self, adapter: str) -> list:
        return [t for t in self.trials if t.adapter == adapter]

    def validation_settings(self, train_set: str) -> dict:
        """How a trial is scored on the validation split of `train_set`: the metric, and for accuracy the protocol's
        settings at the split's suite."""
        settings = self.validation[train_set]
        if "error" in settings:
            raise ValueError(settings["error"])
        return thawed(settings)


@dataclass(frozen=True)
class CostsPlan:
    """The cost jobs (config `costs`): forgetting per fine-tune, merged against unmerged where the method merges."""
    forgetting: Mapping | None                      # config `costs.forgetting`; None: not measured
    merging: Mapping | None                         # config `costs.merging`; None: not measured
    merging_dataset: str | None                     # the evaluation set the merging jobs generate (None: none)
    forgetting_rows: tuple[tuple[str, str, str], ...]
    merging_rows: tuple[tuple[str, str, str], ...]  # fine-tunes whose adapter merges, on an unquantized base

    def forgetting_options(self) -> dict:
        f = self.forgetting
        reference = f["reference"]  # a name ("python-docs") or a source; the job takes JSON either way
        return {"reference": {"builtin": reference} if isinstance(reference, str) else thawed(reference),
                "tokens": f["tokens"], "sequence_length": f["sequence_length"], "batch_size": f["batch_size"],
                "scoring": f["scoring"]}

    def forgetting_inputs(self) -> list[str]:
        """A local reference file is an input of every forgetting job (a changed file re-runs them)."""
        f = self.forgetting
        return [f["reference"]["path"]] if f and isinstance(f["reference"], Mapping) and "path" in f["reference"] \
            else []
