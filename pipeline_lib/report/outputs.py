"""Every table and figure a run writes, declared once: its name, its writer, the caption the HTML report shows it
with (captions/<caption>.rst; none: written but not in the report) and when it applies. The render rule's outputs
(rules/render.smk) and the render job (report/render.py) both read this catalogue, through `of`, so a file written
is a file declared, tracked by Snakemake and, when captioned, in the report.

A table is written as CSV (the report's), Markdown and LaTeX; a figure as PNG (the report's) and PDF. Writers
take the render's `Context` (everything computed once from the scores, predictions and metrics) and the path
stem to write."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

from pipeline_lib.planning import paths
from pipeline_lib.report.formats import FORMATS, REPORTED, write_table


@dataclass(frozen=True)
class Context:
    """What the writers read, computed once per render (report/render.py)."""
    runs: object        # one row per run (each seed's) with its score
    found: dict         # per-item outcomes of every cell's seeds
    cells: object       # one row per cell: means over seeds, intervals
    numeric: object     # the accuracy table (numbers)
    averages: dict
    marks: dict         # contamination marks per cell
    metrics: dict       # fine-tune metrics per (model, adapter, training set, run)
    overlap: dict | None  # the contamination report (None: not computed yet)
    datasets: list
    published: object   # the published results beside ours
    published_names: dict      # our model -> its published name
    published_adapters: dict   # our adapter -> the published adapter names it can meet
    published_training: dict   # our training set -> what published tables call it
    sweeps: dict
    protocols: list     # the run's protocols; the figures show the first
    selections: dict = field(default_factory=dict)  # tuning: (model, adapter, train) -> its selection
    tuned: dict = field(default_factory=dict)       # tuning: `<adapter>.tuned` -> the adapter it tunes
    forgetting: dict = field(default_factory=dict)  # costs: (model, adapter, train, seed) -> forgetting record
    merging: dict = field(default_factory=dict)     # costs: (model, adapter, train, seed) -> merging record
    suites: dict = field(default_factory=lambda: {"train": {}, "eval": {}})  # training/evaluation sets' suites
    card: list | None = None                        # the run's protocol card as the config decided it
    code: dict | None = None                        # rule -> the hash of the code its jobs run now

    @cached_property
    def costs(self):
        """Every row's costs beside its accuracy (report/costs.py): the resources table, Pareto figure, explorer."""
        from pipeline_lib.report.costs import row_costs

        return row_costs(self.metrics, self.runs, self.averages, self.forgetting, self.merging,
                         self.suites["train"], self.suites["eval"])

    @cached_property
    def compared(self) -> dict:
        """Every block's pairs under the declared test, Holm-adjusted (report/comparisons.py)."""
        from pipeline_lib.report import comparisons

        return comparisons.compare_all(self.found, self.datasets)

    @cached_property
    def groups(self) -> dict:
        """(protocol, training set, dataset or average, row) -> (letters, best of its block)."""
        from pipeline_lib.report import comparisons

        accuracy = {(r.protocol, r.dataset, f"{r.model} / {r.adapter} / {r.train_set}"): r.accuracy
                    for r in self.cells.itertuples()}
        accuracy |= {(k[3], comparisons.AVERAGE, " / ".join(k[:3])): v[0] for k, v in self.averages.items()}
        return comparisons.marks(self.compared, accuracy)

    def apart(self, protocol: str) -> set[frozenset]:
        """Pairs of rows told apart on average accuracy under `protocol` (the figures' and explorer's fronts)."""
        from pipeline_lib.report import comparisons

        return {frozenset((p["A"], p["B"])) for (prot, _, d), pairs in self.compared.items()
                if prot == protocol and d == comparisons.AVERAGE for p in pairs if p["separable"]}

    @property
    def params(self) -> dict:
        return {k[:3]: m.get("trainable_params") for k, m in self.metrics.items()}

    def figure_view(self) -> "Context":
        """The context under the run's first protocol only: a figure draws one protocol (the tables show all)."""
        first = self.protocols[0]
        return replace(self, runs=self.runs[self.runs.protocol == first],
                       cells=self.cells[self.cells.protocol == first],
                       numeric=self.numeric[self.numeric.protocol == first],
                       averages={k[:3]: v for k, v in self.averages.items() if k[3] == first},
                       found={k: v for k, v in self.found.items() if k[3] == first})


@dataclass(frozen=True)
class Shape:
    """What decides which outputs a run has: its sweep coordinates, its protocols, whether it tunes."""
    sweeps: dict
    protocols: list
    tuned: bool = False
    forgetting: bool = False


def _sweeps_vary(coordinate: str) -> Callable[[Shape], bool]:
    """A sweep figure applies when some sweep member has this coordinate (pipeline_lib/planning/sweeps.py)."""
    def applies(shape: Shape) -> bool:
        return any(c.get(coordinate) is not None for c in shape.sweeps.values())
    return applies


def _always(shape: Shape) -> bool:
    return True


def _several_protocols(shape: Shape) -> bool:
    return len(shape.protocols) > 1


def _forgets(shape: Shape) -> bool:
    return shape.forgetting


def _tuned(shape: Shape) -> bool:
    return shape.tuned


@dataclass(frozen=True)
class Output:
    name: str
    kind: str                                   # "table" or "figure"
    write: Callable[[Context, str], object]
    caption: str | None = None                  # captions/<caption>.rst
    when: Callable[[Shape], bool] = _always     # of the run's shape

    def _path(self, ext: str) -> str:
        return {"table": paths.table, "figure": paths.figure, "page": paths.page}[self.kind](self.name, ext)

    def files(self) -> list[str]:
        return [self._path(ext) for ext in FORMATS[self.kind]]

    def reported_file(self) -> str:
        return self._path(REPORTED[self.kind])


# --- writers: each one table or figure


def _accuracy(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    return tables.write_accuracy(ctx.numeric, stem, ctx.marks)


def _accuracy_ci(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    return write_table(tables.accuracy_cells(ctx.cells, ctx.datasets, ctx.marks, ctx.averages, ctx.groups), stem,
                       "Accuracy (%) with 95% intervals",
                       tables.accuracy_notes(ctx.marks, ctx.cells) + tables.model_version_notes(ctx.runs)
                       + tables.code_notes(ctx.runs, ctx.metrics, ctx.code) + _card_line(ctx))


def _card_line(ctx: Context) -> list[str]:
    from pipeline_lib.report import card

    return [card.line(ctx.card, ctx.metrics, ctx.runs)] if ctx.card else []


def _card(ctx: Context, stem: str):
    from pipeline_lib.report import card

    return write_table(card.table(ctx.card or {}, ctx.metrics, ctx.runs), stem, "The run's protocol card",
                       group="section")


def _pareto(ctx: Context, stem: str):
    from pipeline_lib.report import pareto

    return pareto.figure(ctx.costs, ctx.protocols[0], stem, ctx.apart(ctx.protocols[0]))


def _explorer(ctx: Context, stem: str):
    from pipeline_lib.report import explorer

    about = (f"{len(ctx.cells)} cells of {ctx.runs[['model', 'adapter', 'train_set']].drop_duplicates().shape[0]} "
             f"rows; accuracy in percent; costs per fine-tune, averaged over seeds (report/costs.py). Hover a point "
             f"for its values and the model version it was computed on.")
    return explorer.write(ctx.cells, ctx.costs, about, f"{stem}.html",
                          sorted(sorted(pair) for p in ctx.protocols for pair in ctx.apart(p)))


def _accuracy_seeds(ctx: Context, stem: str):
    from pipeline_lib.report import aggregate

    return write_table(aggregate.per_seed(ctx.runs, ctx.datasets), stem, "Accuracy (%) of every run (seed)")


def _resources(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    return write_table(tables.resources_table(ctx.metrics, ctx.runs, ctx.forgetting, ctx.merging, ctx.costs),
                       stem, "Resources per fine-tune: what it costs and what it forgets",
                       tables.training_precision_notes(ctx.metrics) + tables.cost_notes(ctx.forgetting, ctx.merging))


def _published(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    comparison = tables.published_comparison(ctx.cells, ctx.published, ctx.published_names, ctx.published_adapters,
                                             ctx.published_training, tables.row_protocols(ctx.metrics, ctx.runs))
    return write_table(comparison, stem, "Ours beside the published results",
                       [] if len(comparison) else ["This run reproduces no published cell (model, adapter, "
                                                    "training set)."])


def _significance(ctx: Context, stem: str):
    from pipeline_lib.report import aggregate, comparisons

    return write_table(comparisons.significance_table(ctx.found, ctx.datasets), stem,
                       "Every pair of rows on the same items: the declared paired test, Holm-adjusted per block",
                       [*comparisons.SIGNIFICANCE_NOTES, aggregate.detectable(ctx.cells)])


def _answers(ctx: Context, stem: str):
    from pipeline_lib.report import chance

    return write_table(chance.answers_table(ctx.cells), stem, "Chance and answer extraction per cell",
                       chance.chance_notes(ctx.cells))


def _forgetting(ctx: Context, stem: str):
    from pipeline_lib.report.costs import forgetting_differences

    return write_table(forgetting_differences(ctx.forgetting), stem,
                       "Forgetting, fine-tune against fine-tune on the same windows",
                       ["A - B: forgetting (nats per token) of A minus B; the 95% interval a bootstrap over the "
                       "windows, paired; p: the declared paired test over the windows (each weighted by its "
                       "tokens), Holm-adjusted over the model's pairs."])


def _findings(ctx: Context, stem: str):
    from pipeline_lib.report import findings, tuning
    from pipeline_lib.report.costs import forgetting_differences

    rank = tuning.rank_stability(ctx.found, ctx.tuned, ctx.datasets) if ctx.tuned else None
    table = findings.findings(ctx.compared, ctx.cells, rank, tuning.edge_warnings(ctx.selections), ctx.merging,
                              forgetting_differences(ctx.forgetting) if ctx.forgetting else None)
    return write_table(table, stem, "What this run can conclude, and by which test",
                       ["Written by the render job from the tests it ran; a difference not listed as told apart "
                       "is not one this run can claim."])


def _contamination(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    if ctx.overlap is not None:  # the `tables` target before the data stage ran: nothing to show yet
        return tables.write_contamination(ctx.overlap, stem)


def _agreement(ctx: Context, stem: str):
    from pipeline_lib.report import tables

    return write_table(tables.agreement_table(ctx.runs), stem,
                       "Agreement between protocols on the same items (per cell, pooled over seeds)",
                       [tables.AGREEMENT_NOTE])


def _accuracy_figure(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    ctx = ctx.figure_view()
    return figures.accuracy_by_dataset(ctx.cells, ctx.datasets, stem, ctx.runs)


def _tradeoff(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    ctx = ctx.figure_view()
    return figures.accuracy_vs_parameters(ctx.numeric, ctx.params, stem)


def _loss(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    return figures.loss_curves(ctx.metrics, stem)


def _time(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    ctx = ctx.figure_view()
    return figures.job_times(ctx.metrics, ctx.runs, stem)


def _placement(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    ctx = ctx.figure_view()
    return figures.placement(ctx.cells, ctx.sweeps, stem, ctx.averages, ctx.runs)


def _size(ctx: Context, stem: str):
    from pipeline_lib.report import figures

    ctx = ctx.figure_view()
    return figures.size(ctx.cells, ctx.sweeps, ctx.params, stem, ctx.averages)


def _tuning(ctx: Context, stem: str):
    from pipeline_lib.report import tuning

    return write_table(tuning.tuning_table(ctx.selections), stem,
                       "Tuning: every trial's validation score; the setting chosen per adapter",
                       tuning.tuning_notes(ctx.selections))


def _tuned_vs_default(ctx: Context, stem: str):
    from pipeline_lib.report import tuning

    return write_table(tuning.tuned_vs_default(ctx.found, ctx.tuned, ctx.datasets), stem,
                       "Each adapter's configured setting against its tuned one on the test sets (paired by item)",
                       [tuning.TUNED_NOTE])


def _rank_stability(ctx: Context, stem: str):
    from pipeline_lib.report import tuning

    return write_table(tuning.rank_stability(ctx.found, ctx.tuned, ctx.datasets), stem,
                       "The adapters' ranking under their configured settings and under tuning", [tuning.RANK_NOTE])


def _sensitivity(ctx: Context, stem: str):
    from pipeline_lib.report import tuning

    return tuning.sensitivity(ctx.selections, stem)


CATALOGUE: tuple[Output, ...] = (
    Output("findings", "table", _findings, "findings_table"),
    Output("accuracy", "table", _accuracy),
    Output("accuracy_ci", "table", _accuracy_ci, "accuracy_table"),
    Output("accuracy_seeds", "table", _accuracy_seeds, "accuracy_seeds_table"),
    Output("resources", "table", _resources, "resources_table"),
    Output("published", "table", _published, "published_table"),
    Output("significance", "table", _significance, "significance_table"),
    Output("answers", "table", _answers, "answers_table"),
    Output("forgetting", "table", _forgetting, "forgetting_table", _forgets),
    Output("contamination", "table", _contamination, "contamination_table"),
    Output("agreement", "table", _agreement, "agreement_table", _several_protocols),
    Output("accuracy", "figure", _accuracy_figure, "accuracy_figure"),
    Output("tradeoff", "figure", _tradeoff, "tradeoff_figure"),
    Output("loss", "figure", _loss, "loss_figure"),
    Output("time", "figure", _time, "time_figure"),
    Output("placement", "figure", _placement, "placement_figure", _sweeps_vary("placement")),
    Output("size", "figure", _size, "size_figure", _sweeps_vary("size")),
    Output("protocol_card", "table", _card, "protocol_card_table"),
    Output("pareto", "figure", _pareto, "pareto_figure"),
    Output("explorer", "page", _explorer, "explorer_page"),
    Output("tuning", "table", _tuning, "tuning_table", _tuned),
    Output("tuned_vs_default", "table", _tuned_vs_default, "tuned_vs_default_table", _tuned),
    Output("rank_stability", "table", _rank_stability, "rank_stability_table", _tuned),
    Output("sensitivity", "figure", _sensitivity, "sensitivity_figure", _tuned),
)


def of(plan) -> list[Output]:
    """The outputs of a run, as its render plan (planning/render.py) shapes it: what the render rule declares and
    the render job writes."""
    return applicable(plan.sweeps, plan.protocols, bool(plan.tuning), bool(plan.forgetting))


def applicable(sweeps: dict, protocols: list, tuned: bool = False, forgetting: bool = False) -> list[Output]:
    """The outputs of a run with these sweep coordinates and protocols, tuned or not, measuring forgetting or not."""
    shape = Shape(dict(sweeps), list(protocols), tuned, forgetting)
    return [o for o in CATALOGUE if o.when(shape)]


def declared_files(sweeps: dict, protocols: list, tuned: bool = False, forgetting: bool = False) -> list[str]:
    return [f for o in applicable(sweeps, protocols, tuned, forgetting) for f in o.files()]
