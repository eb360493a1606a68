"""The render job: every table and figure of a run (report/outputs.py's catalogue) from its score files, predictions,
fine-tune metrics, cost records, selections and contamination report, as the render plan (planning/render.py) says.
The `render` rule runs it on the configured rows; `snakemake tables` on whatever exists (scripts/render.py)."""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline_lib.planning import paths
from pipeline_lib.planning.render import RenderPlan
from pipeline_lib.report import aggregate, outputs, published, tables
from pipeline_lib.report.tuning import edge_warnings
from pipeline_lib.runtime.files import read_json


def _selections(paths_: list[str]) -> list[dict]:
    """Every selection that exists (the `tables` target renders before tuning has finished, too), labelled by the
    (model, adapter, training set) of its path: results/tuning/<model>/<adapter>/<train>/selection.json."""
    found = []
    for path in paths_:
        if Path(path).is_file():
            model, adapter, train = Path(path).parts[-4:-1]
            found.append({**read_json(path), "model": model, "adapter": adapter, "train_set": train})
    return found


def _records(paths_: list[str]) -> dict[tuple, dict]:
    """Cost records that exist (the `tables` target renders before every job ran), keyed as the fine-tune's
    metrics: (model, adapter, training set, seed)."""
    records = [read_json(p) for p in paths_ if Path(p).is_file()]
    return {(r["model"], r["adapter"], r["train_set"], r.get("seed")): r for r in records}


def render(scores: list[str], predictions: list[str], adapters: list[str], contamination: str,
           plan: RenderPlan, selections: list[str] = (), forgetting: list[str] = (), merging: list[str] = ()) -> None:
    """Every table and figure of the run from its score files, their predictions (parallel to the scores),
    fine-tune metrics and contamination report, as the render plan says. Scores not computed yet are skipped,
    saying so (the `tables` target renders whatever exists)."""
    missing = [p for p in scores if not Path(p).is_file()]
    if missing:
        print(f"skipping {len(missing)} score file(s) not computed yet, e.g. {missing[0]}", file=sys.stderr)
    present = [i for i, p in enumerate(scores) if Path(p).is_file()]
    runs = tables.collect([scores[i] for i in present], plan.paper_rules,  # one row per run (each seed's)
                          [predictions[i] for i in present])
    datasets = plan.datasets
    found = aggregate.outcomes(runs)  # per-item outcomes of every cell's seeds
    cells = aggregate.cells(runs, found)  # one row per cell: means over seeds, intervals over seeds and items
    overlap = read_json(contamination) if Path(contamination).is_file() else None
    # before the data stage has run (the `tables` target) there is no report, and nothing to mark
    marks = tables.contamination_marks(overlap, plan.train_parts, datasets) if overlap else {}
    metrics = tables.load_metrics([paths.metrics(d) for d in adapters if Path(paths.metrics(d)).is_file()])
    numeric = tables.accuracy_table(cells, datasets)
    for note in [*tables.model_version_notes(runs), *tables.code_notes(runs, metrics, plan.code)]:
        print(f"WARNING: {note}", file=sys.stderr)
    costs = _records(forgetting), _records(merging)
    context = outputs.Context(
        runs=runs, found=found, cells=cells, numeric=numeric, averages=aggregate.averages(found, datasets),
        marks=marks, metrics=metrics, overlap=overlap, datasets=datasets,
        published=published.load(plan.published), published_names=plan.published_names,
        published_adapters=plan.published_adapters, published_training=plan.published_training,
        sweeps=plan.sweeps, protocols=plan.protocols,
        selections={(s["model"], s["adapter"], s["train_set"]): s for s in _selections(selections)},
        tuned=(plan.tuning or {}).get("tuned", {}), forgetting=costs[0], merging=costs[1],
        suites=plan.suites or {"train": {}, "eval": {}}, card=plan.card, code=plan.code)
    where = {"table": Path(plan.tables), "figure": Path(plan.figures), "page": Path(plan.tables).parent}
    for output in outputs.of(plan):  # the render rule's outputs
        output.write(context, where[output.kind] / output.name)
    print(numeric.to_string(index=False))
    for warning in edge_warnings(context.selections):  # the Snakefile's onsuccess repeats these at the run's end
        print(f"WARNING: {warning}", file=sys.stderr)
