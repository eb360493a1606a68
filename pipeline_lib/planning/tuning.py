"""Equal-budget tuning (config `tuning:`), planned before any job. Every compared adapter gets the same number of
trials (`budget`) from its own search space (`space`: learning rate always, and any option of its method or any
training setting), each trial an ordinary cached fine-tune named by its values, scored on a validation split carved
from the training set (never a test set); a selection job per (model, adapter, training set) picks the best trial
from the validation scores alone, and the chosen setting is trained again (once per seed, where the run has seeds)
as the row `<adapter>.tuned` and evaluated on the test sets beside the adapter's configured (default) setting.

    tuning:
      budget: 6                  # trials per adapter, the same for every adapter
      search: grid               # grid: every point of the space (the budget must equal its size); random: a
      seed: 0                    #   seeded sample of `budget` points (prefix-stable: a grown budget keeps them)
      space:                     # by adapter name, method, family or `all`; the more specific wins, key by key
        all: {learning_rate: [1.0e-4, 3.0e-4, 1.0e-3]}
        lora: {r: [8, 32]}
        bottleneck: {bottleneck_size: [32, 128]}
      validation: {size: 64, metric: accuracy}   # items per training set; accuracy (by the run's first protocol,
                                                 # or `protocol`) or loss (the training loss on the split)

A trial's name depends only on its adapter and its values (`lora.trial-lr0.0003-r8`), so a grown space or budget
re-runs only the new trials."""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, fields

from pipeline_lib.catalog import method_options, methods
from pipeline_lib.catalog.training import TrainConfig
from pipeline_lib.planning.sweeps import name_part

TRAINING_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name != "prompt")
ABBREVIATIONS = {"learning_rate": "lr", "weight_decay": "wd", "lora_dropout": "drop", "warmup_steps": "warm"}
TUNED, TRIAL = ".tuned", ".trial-"  # the chosen setting's adapter name, a trial's prefix


class TuningError(ValueError):
    pass


@dataclass(frozen=True)
class Trial:
    adapter: str     # the configured adapter it tunes
    name: str        # its own adapter (and run) name
    values: dict     # space key -> the trial's value


def space_for(name: str, spec: dict, space: dict) -> dict[str, list]:
    """The adapter's search space: `all`, then its family's, its method's and its own name's keys over them."""
    entry = methods.get(spec["method"])
    merged: dict[str, list] = {}
    for key in ("all", entry.family, entry.name, name):
        merged.update(space.get(key, {}))
    return merged


def points(space: dict[str, list], search: str, budget: int, seed: int, name: str) -> list[dict]:
    keys = sorted(space, key=lambda k: (k != "learning_rate", k))  # learning rate first in names and figures
    grid = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    if search == "grid":
        if budget != len(grid):
            raise TuningError(f"tuning.budget: {budget} trials, but {name}'s grid has {len(grid)} points; a grid "
                              f"search tries every point, so every adapter's grid must have exactly the budget "
                              f"(or use search: random)")
        return grid
    if budget > len(grid):
        raise TuningError(f"tuning.budget: {budget} is larger than {name}'s grid of {len(grid)} points "
                          f"({', '.join(f'{k}: {len(v)}' for k, v in space.items())})")
    order = list(range(len(grid)))
    random.Random(f"{seed}:{name}").shuffle(order)  # a larger budget extends the same sequence
    return [grid[i] for i in order[:budget]]


def trial_name(adapter: str, values: dict) -> str:
    parts = [name_part(k if k == "target_modules" else ABBREVIATIONS.get(k, k), v) for k, v in values.items()]
    return adapter + TRIAL + "-".join(parts)


def split_values(values: dict) -> tuple[dict, dict]:
    """(the method's options, the training settings) of a trial's (or the chosen) values."""
    return ({k: v for k, v in values.items() if k not in TRAINING_KEYS},
            {k: v for k, v in values.items() if k in TRAINING_KEYS})


def apply(spec: dict, values: dict) -> dict:
    """The adapter spec with a trial's values: method options in place, training keys in its `training` overrides."""
    options, training = split_values(values)
    return {**spec, **options, "training": {**spec.get("training", {}), **training}}


def expand(tuning: dict, adapters: dict[str, dict]) -> tuple[dict[str, dict], list[Trial], dict[str, dict]]:
    """(trial adapters by name, the trials, the tuned adapters `<adapter>.tuned` by name), every problem of the
    block at once as a TuningError naming the key."""
    problems, trial_specs, trials, tuned = [], {}, [], {}
    if not adapters:
        raise TuningError("tuning: the run has no adapter to tune (a base-only run); remove `tuning` or add adapters")
    for name, spec in adapters.items():
        space = space_for(name, spec, tuning["space"])
        if "learning_rate" not in space:
            problems.append(f"tuning.space: no learning_rate for {name} (every adapter searches the learning rate; "
                            f"give it under `all`, its method {spec['method']!r} or its name)")
            continue
        valid = set(TRAINING_KEYS) | method_options.options(spec["method"])
        unknown = sorted(set(space) - valid)
        if unknown:
            problems.append(f"tuning.space: {unknown} for {name}: method {spec['method']!r} has no such option and "
                            f"no training setting is called so")
            continue
        try:
            chosen = points(space, tuning["search"], tuning["budget"], tuning["seed"], name)
        except TuningError as e:
            problems.append(str(e))
            continue
        for values in chosen:
            trial = Trial(name, trial_name(name, values), values)
            trials.append(trial)
            trial_specs[trial.name] = {k: v for k, v in apply(spec, values).items() if k != "seeds"}
        tuned[name + TUNED] = {**spec, "tuned_from": name}
    if problems:
        raise TuningError("\n  ".join(problems))
    return trial_specs, trials, tuned


def validation_problems(tuning: dict, train_parts: list[str], items: dict[str, int | None]) -> list[str]:
    """A validation split that would leave a training set nothing (or less than the run trains on) to train on."""
    size, problems = tuning["validation"]["size"], []
    for part in train_parts:
        known = items.get(part)
        if known is not None and size >= known:
            problems.append(f"tuning.validation.size: {size} items is not smaller than training set {part!r} "
                            f"({known} items)")
    return problems
