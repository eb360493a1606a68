"""The run's tables, each written by one writer as CSV, Markdown and LaTeX: accuracy (numbers, and with 95%
intervals, best per column marked, contamination marks), resources per fine-tune, ours beside the published
numbers, pairwise significance between rows trained on the same set, and train/test contamination."""
from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from pipeline_lib.catalog import protocols
from pipeline_lib.catalog.base_models import describe_quantization
from pipeline_lib.catalog.dtypes import describe as describe_precision
from pipeline_lib.catalog.runs import NO_TRAIN_SET
from pipeline_lib.evaluation import stats
from pipeline_lib.report import aggregate, chance, comparisons
from pipeline_lib.report.aggregate import FINETUNE_KEYS, ROW_KEYS
from pipeline_lib.report.costs import generation_mfu
from pipeline_lib.report.formats import write_table
from pipeline_lib.runtime.files import read_json, read_jsonl

PROTOCOL_ORDER = {p: i for i, p in enumerate(protocols.PROTOCOLS)}  # blocks and pairs in the registry's order


def _interval(accuracy: float, n: int) -> list[float]:
    correct = round(accuracy * n)
    return stats.accuracy_summary([True] * correct + [False] * (n - correct))["ci95"]


def collect(score_paths: list[str | Path], paper_rules: dict[str, str],
            predictions: list[str | Path] | None = None) -> pd.DataFrame:
    """One row per score file (one run): model, adapter, train_set, dataset, seed, run, accuracy (percent), n,
    its 95% Wilson interval (fractions), evaluation wall time, and the accuracy under upstream's extraction rule
    (`paper_rules`: dataset -> the rule of its answer type; percent, with its interval), which is what a published
    number is compared with. `predictions`, parallel to the scores, are where aggregate.outcomes reads each run's
    items (None: no per-item outcomes)."""
    rows = []
    for i, path in enumerate(score_paths):
        s = read_json(path)
        low, high = s.get("ci95") or _interval(s["accuracy"], s["n"])
        rule = paper_rules[s["dataset"]]
        paper = s.get("rules", {}).get(rule, s["accuracy"])
        paper_low, paper_high = _interval(paper, s["n"])
        rows.append({**{k: s[k] for k in ROW_KEYS}, "dataset": s["dataset"], "seed": s.get("seed"),
                     "run": s.get("run", s["adapter"]),
                     "accuracy": 100.0 * s["accuracy"], "n": s["n"], "ci_low": low, "ci_high": high,
                     "wall_time_s": s.get("wall_time_s"), "paper_accuracy": 100.0 * paper,
                     **_efficiency_columns(s.get("efficiency")),
                     "chance": s.get("chance"), "no_answer_share": s.get("no_answer_share"),
                     "quantization": describe_quantization(s.get("quantization")),
                     "precision": describe_precision(s.get("precision")),
                     "paper_ci_low": paper_low, "paper_ci_high": paper_high, "paper_rule": rule,
                     **_decoding_columns(s.get("evaluation", {})),
                     "model_version": model_identity(s.get("provenance", {}).get("model")),
                     "provenance": s.get("provenance"),
                     "predictions": str(predictions[i]) if predictions else None})
    if not rows:
        raise ValueError("no score files to aggregate")
    return pd.DataFrame(rows)


def _efficiency_columns(record: dict | None) -> dict:
    """An evaluation's model FLOPs and its device's peak FLOP/s (models/efficiency.py), to sum MFU over jobs."""
    record = record or {}
    return {"model_flops": sum(record.get("model_flops", {}).values()) or None,
            "peak_flops_per_s": record.get("peak_flops_per_s")}


def _decoding_columns(settings: dict) -> dict:
    """How a score's items were put to the model, in a published source's terms (report/published.py)."""
    if not settings:
        return {"decoding": None, "max_new_tokens": None, "suite": None}
    generated = settings.get("scorer") != "loglikelihood"
    batch = f", batch {settings.get('batch_size')}" if generated and protocols.beams(settings) > 1 else ""
    return {"decoding": protocols.decoding(settings) + batch,
            "max_new_tokens": settings.get("max_new_tokens") if generated else None, "suite": settings.get("suite")}


def model_identity(source: dict | None) -> str:
    """What tells two versions of a base model apart (a hub commit, the embedded wheel's checksum, a local
    directory's fingerprint), from the provenance a job recorded (pipeline_lib.runtime.provenance)."""
    if not source:
        return "unrecorded"
    return source.get("commit") or source.get("wheel_sha256") or source.get("fingerprint") or "unknown"


def model_version_notes(runs: pd.DataFrame) -> list[str]:
    """A note for each model whose rows were computed on more than one version of it (a branch that moved between
    downloads, a local directory changed in place): such rows do not compare."""
    notes = []
    for model, versions in runs.groupby("model", sort=False).model_version:
        seen = sorted(set(versions) - {"unrecorded"})
        if len(seen) > 1:
            notes.append(f"{model}: its rows were computed on {len(seen)} versions of the model "
                         f"({', '.join(v[:12] for v in seen)}); they do not compare. Pin the model's revision to a "
                         f"commit and re-run the rows of the other version.")
    return notes


def code_notes(runs: pd.DataFrame, metrics: dict, current: dict | None, shown: int = 6) -> list[str]:
    """A note where rows were made by other code than the checkout's (a run that opted out of re-making them, or
    results copied from elsewhere): how many scores and fine-tunes, which rows (up to `shown`, then how many more)
    and which code hashes made them."""
    if not current:
        return []
    def stage(provenance):
        return ((provenance or {}).get("code") or {}).get("stage")

    made = {"evaluate": [(stage(p), " ".join(str(r[k]) for k in ROW_KEYS) + f" on {r['dataset']}")
                         for p, (_, r) in zip(runs.get("provenance", []), runs.iterrows())],
            "finetune": [(stage(m.get("provenance")), " ".join(str(k) for k in key if k is not None))
                         for key, m in metrics.items()]}
    notes = []
    for rule, found in made.items():
        other = [(s, row) for s, row in found if s and s != current.get(rule)]
        if other:
            rows = [row for _, row in other]
            more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
            notes.append(f"{len(other)} of {len(found)} {'scores' if rule == 'evaluate' else 'fine-tunes'} were made "
                         f"by other {rule} code ({', '.join(sorted({s for s, _ in other}))}) than this checkout's "
                         f"({current.get(rule)}): {'; '.join(rows[:shown])}{more}. Re-run them (drop "
                         f"--rerun-triggers' omission of `code`) before comparing them with rows made now.")
    return notes


def protocol_blocks(table: pd.DataFrame) -> pd.DataFrame:
    """The rows in one block per protocol (in the registry's order), each block in its rows' order."""
    return table.sort_values("protocol", key=lambda c: c.map(PROTOCOL_ORDER), kind="stable").reset_index(drop=True)


def accuracy_table(scores: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Rows model-adapter-training set-protocol (a block per protocol), columns the datasets in the given order +
    their average."""
    table = scores.pivot_table(index=ROW_KEYS, columns="dataset", values="accuracy", aggfunc="first", sort=False)
    table = table.reindex(columns=[d for d in datasets if d in table.columns])
    table["average"] = table.mean(axis=1)
    return protocol_blocks(table.round(1).reset_index())


def write_accuracy(table: pd.DataFrame, stem, marks: dict) -> list[Path]:
    """The numeric accuracy table: CSV with a `marks` column naming marked cells, Markdown/LaTeX with the marks."""
    flags = [";".join(f"{d}:{marks[(t, d)]}" for d in table.columns if (t, d) in marks) for t in table["train_set"]]
    shown, legend = marked(table, marks)
    return write_table(table.assign(marks=flags), stem, None, legend, shown=shown, floatfmt=".1f")


MARKS = {"contaminated": "†", "decontaminated": "‡"}
LEGEND = {"contaminated": "† contaminated: the training set contains some of these test questions "
                          "(decontaminate: report); see contamination.md",
          "decontaminated": "‡ scored on the decontaminated subset: test items found in a training set of the run "
                            "were dropped (decontaminate: eval)"}


def contamination_marks(report: dict, train_parts: dict[str, list[str]], datasets: list[str]) -> dict:
    """(training set, dataset) -> 'contaminated' | 'decontaminated' for every cell the policy affects.
    Under `eval` a decontaminated column is marked in every row (base rows included): all were scored on it."""
    level, policy, pairs = report["level"], report["policy"], report["pairs"]
    marks = {}
    for dataset in datasets:
        touched = any(row.get(dataset, {}).get(level) for row in pairs.values())
        for train, parts in train_parts.items():
            overlap = any(pairs.get(p, {}).get(dataset, {}).get(level) for p in parts)
            if policy == "report" and overlap:
                marks[(train, dataset)] = "contaminated"
            if policy == "eval" and touched:
                marks[(train, dataset)] = "decontaminated"
    return marks


def marked(table: pd.DataFrame, marks: dict) -> tuple[pd.DataFrame, list[str]]:
    """The table as text with each affected cell's mark, and the legend lines of the marks used."""
    shown = table.copy()
    used = set()
    for column in shown.columns:
        if column in ROW_KEYS or column == "average":
            continue
        cells = []
        for train, value in zip(table["train_set"], table[column]):
            mark = marks.get((train, column))
            used.add(mark)
            cells.append(f"{value:.1f}{MARKS[mark] if mark else ''}" if pd.notna(value) else "")
        shown[column] = cells
    return shown, [LEGEND[m] for m in MARKS if m in used]


def accuracy_cells(cells: pd.DataFrame, datasets: list[str], marks: dict, averages: dict[tuple, tuple] | None = None,
                   groups: dict[tuple, tuple] | None = None) -> pd.DataFrame:
    """Rows model / adapter / training set; each cell 'acc [low, high]' in percent (the mean over seeds where
    there are several), then its letters (`groups`, comparisons.marks: rows of a block sharing a letter are not told
    apart), in bold only where the row is significantly above every other row of its block; contamination marks
    appended. The average column is the mean of the row's accuracies, with its interval where the row's per-item
    outcomes are known, and its own letters."""
    shown = _group_marks(groups or {})
    rows = []
    for keys, group in cells.groupby(ROW_KEYS, sort=False):
        row = dict(zip(ROW_KEYS, keys))
        by_set = group.set_index("dataset")
        name, protocol = " / ".join(keys[:3]), keys[3]
        for d in datasets:
            if d not in by_set.index:
                row[d] = ""
                continue
            s = by_set.loc[d]
            text = _marked(f"{s.accuracy:.1f} [{100 * s.ci_low:.1f}, {100 * s.ci_high:.1f}]",
                           shown.get((protocol, d, name)))
            row[d] = text + MARKS.get(marks.get((keys[2], d)), "") + (chance.CHANCE_MARK if chance.at_chance(s) else "")
        average = round(by_set.loc[[d for d in datasets if d in by_set.index], "accuracy"].mean(), 1)
        if averages and keys in averages:
            _, low, high = averages[keys]
            row["average"] = _marked(f"{average:.1f} [{100 * low:.1f}, {100 * high:.1f}]",
                                     shown.get((protocol, comparisons.AVERAGE, name)))
        else:
            row["average"] = average
        row["seeds"] = int(group.seeds.max())
        rows.append(row)
    return protocol_blocks(pd.DataFrame(rows))


def _group_marks(groups: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """(protocol, dataset, row) -> (letters, best): a row in one block only (a base row compared in several
    training sets' blocks shows no letters: which block's would be ambiguous; `significance` lists its pairs)."""
    found: dict[tuple, list] = {}
    for (protocol, _, dataset, name), mark in groups.items():
        found.setdefault((protocol, dataset, name), []).append(mark)
    return {k: v[0] for k, v in found.items() if len(v) == 1}


def _marked(text: str, mark: tuple | None) -> str:
    if not mark:
        return text
    letters, best = mark
    return f"**{text}** {letters}" if best else f"{text} {letters}"


def accuracy_notes(marks: dict, cells: pd.DataFrame | None = None) -> list[str]:
    used = set(marks.values())
    notes = ["Accuracy in percent with its 95% interval: over the items (Wilson) for one seed; for several seeds the "
             "mean over seeds, its interval over seeds and items (hierarchical bootstrap); the average's interval "
             "by the same bootstrap over every set's items (Wilson's where every outcome is the same, which a "
             "bootstrap cannot resample). Letters: rows of a column sharing a letter are not told apart by the paired "
             "test (Holm-adjusted p >= 0.05 within the block of rows on the same items; the `significance` table "
             "lists every pair); bold: a row significantly above every other row of its block, and only such a row."]
    notes += [LEGEND[m] for m in MARKS if m in used]
    if cells is not None and (cells.quantization != "none").any():
        bases = cells.groupby("model", sort=False).quantization.agg(lambda q: ", ".join(sorted(set(q))))
        notes.append("Base weights: " + "; ".join(f"{m} {q}" for m, q in bases.items()) + ".")
    if cells is not None and "precision" in cells:
        notes.append("Evaluation precision: " + "; ".join(sorted(set(cells.precision))) + ".")
    if cells is not None:
        notes += chance.chance_notes(cells)
        notes.append(aggregate.detectable(cells))
    return notes


def resources_table(metrics: dict[tuple, dict], runs: pd.DataFrame, forgetting: dict | None = None,
                    merging: dict | None = None, costs: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per fine-tune (each seed's): trainable parameters, training time, speed and MFU, memory, adapter
    size, the evaluation time of its run summed over datasets (and its generation's MFU) and the total; where
    measured (report/costs.py), CUDA's reserved memory over steps, forgetting, the accuracy change outside the
    training suite, and inference merged against unmerged."""
    eval_time = runs.groupby([*FINETUNE_KEYS, "run"])["wall_time_s"].sum()  # over datasets and protocols
    with_seeds = any(m.get("seed") is not None for m in metrics.values())
    forgetting, merging = forgetting or {}, merging or {}
    outside = {} if costs is None else {tuple(r[:3]): r[3] for r in costs[
        [*FINETUNE_KEYS, "out_of_suite_delta"]].drop_duplicates(FINETUNE_KEYS).itertuples(index=False)}
    rows = []
    for keys, m in metrics.items():
        run = m.get("run", keys[1])
        # eval and total at the train time's precision, the total from unrounded parts: a tiny job's total must
        # not round below its training time
        evaluated = float(eval_time.get((*keys[:3], run), float("nan")))
        rows.append({**dict(zip(FINETUNE_KEYS, keys)), **({"seed": m.get("seed")} if with_seeds else {}),
                     "trainable params": m.get("trainable_params"),
                     "% of base": round(m.get("trainable_percent", float("nan")), 4),
                     "train time (s)": m.get("wall_time_s"), "tokens/s": m.get("tokens_per_s"),
                     "train MFU (%)": _percent((m.get("efficiency") or {}).get("mfu")),
                     "eval MFU (%)": _eval_mfu(runs, (*keys[:3], run)),
                     "peak RSS (MB)": m.get("peak_rss_mb"), "peak CUDA (MB)": m.get("peak_cuda_mb"),
                     "adapter file (MB)": round(m.get("adapter_file_bytes", 0) / 2 ** 20, 2),
                     "base": describe_quantization(m.get("quantization")),
                     "train precision": describe_precision(m.get("precision"), short=True),
                     "base weights (MB)": m.get("base_weights_mb"),
                     "cut at cutoff": _cut(m.get("truncation")),
                     "eval time (s)": round(evaluated, 2),
                     "total time (s)": round(m["wall_time_s"] + evaluated, 2) if m.get("wall_time_s") else None,
                     **_cuda_reserved(m), **_forgetting(forgetting.get(keys)),
                     **({"Δ acc. outside suite (points)": _round(outside.get(tuple(keys[:3])), 1)}
                        if any(v is not None and v == v for v in outside.values()) else {}),
                     **_merging(merging.get(keys), bool(merging))})
    return pd.DataFrame(rows)


def _eval_mfu(runs: pd.DataFrame, key: tuple) -> float | None:
    """MFU (%) of a fine-tune's generating evaluations together (report/costs.py `generation_mfu`)."""
    if "model_flops" not in runs:
        return None
    return generation_mfu(runs[(runs[[*FINETUNE_KEYS, "run"]] == list(key)).all(axis=1)])


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else round(100 * fraction, 1)


def _cut(truncation: dict | None) -> str | None:
    """'k/n' training examples that reached cutoff_len (their answers cut), and those that kept no label."""
    if not truncation:
        return None
    empty = f", {truncation['no_label']} unlabelled" if truncation["no_label"] else ""
    return f"{truncation['cut_at_cutoff']}/{truncation['examples']}{empty}"


def _round(value, digits):
    return None if value is None or value != value else round(float(value), digits)


def _cuda_reserved(m: dict) -> dict:
    cuda = m.get("cuda_memory")
    return {"CUDA reserved avg (MB)": cuda.get("reserved_avg_mb"),
            "CUDA reserved p99 (MB)": cuda.get("reserved_p99_mb")} if cuda else {}


def _forgetting(record: dict | None) -> dict:
    if not record:
        return {}
    ci = record.get("forgetting_ci95")
    return {"forgetting (Δ CE)": round(record["forgetting"], 4),
            "forgetting 95% CI": f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else None}


def _merging(record: dict | None, measured: bool) -> dict:
    if not measured:
        return {}
    if not record:
        return {"tokens/s merged": None, "tokens/s unmerged": None, "merged = unmerged": "not merged"}
    return {"tokens/s merged": (record.get("merged") or {}).get("new_tokens_per_s"),
            "tokens/s unmerged": (record.get("unmerged") or {}).get("new_tokens_per_s"),
            "merged = unmerged": merge_agreement(record)}


def merge_agreement(record: dict) -> str:
    """'k/n' identical greedy responses, merged against unmerged in the evaluation's precision, with the float32
    control and the base model's own precision floor where that precision is not float32."""
    agreement = record.get("agreement")
    if not record.get("mergeable") or not agreement:
        return "not mergeable"
    text = f"{agreement['same_response']}/{record['items']}"
    if record.get("float32_control"):
        text += (f" in {record['dtype']} (float32: {record['float32_control']['same_response']}/{record['items']}; "
                 f"base {record['dtype']} vs float32: {record['precision_floor']['same_response']}/{record['items']})")
    return text


def cost_notes(forgetting: dict, merging: dict) -> list[str]:
    """Under the resources table: what forgetting was measured on; the merged-vs-unmerged comparison."""
    notes = []
    if forgetting:
        first = next(iter(forgetting.values()))
        ref = first["reference"]
        floor = first.get("precision_floor")
        notes.append(f"Forgetting: the change in mean per-token cross-entropy (nats) on {first['tokens_scored']:,} "
                     f"tokens of {ref['name']} (sha256 {ref['sha256'][:12]}; {first['windows']} windows from "
                     f"{ref['documents']} documents) with the adapter enabled against disabled, computed in "
                     f"{first.get('dtype', 'the job precision')}; positive: worse on that text. The 95% interval is a "
                     f"bootstrap over the windows; `forgetting` lists which differences between fine-tunes are told "
                     f"apart." + (f" The precision alone moves the base model's cross-entropy by "
                                  f"{floor['difference']:+.4f} ({first.get('dtype')} against float32, first "
                                  f"{floor['windows']} windows): a smaller forgetting difference is within it."
                                  if floor else ""))
    if merging:
        first = next(iter(merging.values()))
        notes.append(f"Merged = unmerged: of the first {first['items']} items of {first['dataset']}, how many greedy "
                     f"responses are identical with the adapter merged into the base weights (in float32, then cast, "
                     f"as the evaluation builds it) and kept beside them, in the evaluation's precision; where that "
                     f"is not float32, the same in float32 (the control) and the base model alone in that precision "
                     f"against float32 (how much the precision alone changes). Speed in generated tokens per second, "
                     f"the two forms timed alternately in the same process.")
    return notes


def training_precision_notes(metrics: dict[tuple, dict]) -> list[str]:
    """Under the resources table: how each fine-tune's precision was chosen (the probe's figures for `auto`)."""
    chosen = sorted({describe_precision(m.get("precision")) for m in metrics.values()})
    return [f"Training autocast: {'; '.join(chosen)}."] if chosen else []


def published_comparison(scores: pd.DataFrame, published: pd.DataFrame, model_names: dict[str, str],
                         adapter_names: dict[str, list[str]], trained_on: dict[str, list[str]],
                         ours: dict[tuple, dict] | None = None) -> pd.DataFrame:
    """Ours beside every published result (pipeline_lib.report.published) of the same model, adapter, training set
    and dataset, a row per source. The comparison uses our accuracy under the set's paper rule (upstream's
    extraction rule, which produced the LLM-Adapters numbers); our reported accuracy (a stricter rule for letters
    and option labels) stands beside it. `ours`: (model, adapter, training set, protocol) -> how that row was
    produced, so each row says where its protocol differs from the source's."""
    from pipeline_lib.report.published import differences

    rows = []
    for s in scores.itertuples():
        if protocols.get(s.protocol).scorer != "generate":  # the published numbers were generated
            continue
        match = published[published.trained_on.isin(trained_on.get(s.train_set, [])) &
                          (published.model == model_names.get(s.model)) &
                          published.adapter.isin(adapter_names.get(s.adapter, [])) & (published.dataset == s.dataset)]
        low, high = 100 * s.paper_ci_low, 100 * s.paper_ci_high
        for theirs in match.itertuples():
            value = round(float(theirs.accuracy), 1)
            rows.append({"model": s.model, "adapter": s.adapter, "dataset": s.dataset, "source": theirs.source,
                         "theirs as": theirs.adapter, "ours (paper rule)": round(s.paper_accuracy, 1),
                         "95% CI": f"[{low:.1f}, {high:.1f}]", "theirs": value,
                         "ours - theirs": round(s.paper_accuracy - value, 1),
                         "theirs inside our CI": low <= value <= high, "ours (reported rule)": round(s.accuracy, 1),
                         "protocol differences": differences(
                             (ours or {}).get((s.model, s.adapter, s.train_set, s.protocol), {}), theirs.source,
                             theirs.adapter)})
    return pd.DataFrame(rows, columns=["model", "adapter", "dataset", "source", "theirs as", "ours (paper rule)",
                                       "95% CI", "theirs", "ours - theirs", "theirs inside our CI",
                                       "ours (reported rule)", "protocol differences"])


def row_protocols(metrics: dict[tuple, dict], runs: pd.DataFrame) -> dict[tuple, dict]:
    """(model, adapter, training set, protocol) -> how the row was produced, in the terms of a published source's
    protocol (report/published.py): training from its fine-tune's metrics, decoding from its scores' settings, the
    model's version from their provenance."""
    trained = {k[:3]: m for k, m in metrics.items()}
    out = {}
    for r in runs.drop_duplicates([*ROW_KEYS]).itertuples():
        m = trained.get((r.model, r.adapter, r.train_set), {})
        t = m.get("training", {})
        length = f"{t['max_steps']} optimizer steps" if t.get("max_steps") else \
            f"{t['epochs']:g} epochs" if t.get("epochs") else None
        out[(r.model, r.adapter, r.train_set, r.protocol)] = {
            k: v for k, v in {
                "train_on_inputs": t.get("train_on_inputs"), "cutoff_len": t.get("cutoff_len"), "length": length,
                "padding": t.get("padding_side"), "decoding": r.decoding,
                "max_new_tokens": None if pd.isna(r.max_new_tokens) else int(r.max_new_tokens), "suite": r.suite,
                "answer rule": "upstream's (paper)",
                "learning rate": f"{t['learning_rate']:g}" if t.get("learning_rate") else None,
                "batch": (f"{t['batch_size']} per step, {t['micro_batch_size']} per forward pass"
                          if t.get("batch_size") else None),
                "schedule": (f"AdamW, weight decay {t['weight_decay']:g}, {t['lr_scheduler']} decay, "
                             f"{t['warmup_steps']} warmup steps, clipping {t['max_grad_norm']:g}"
                             if t.get("lr_scheduler") else None),
                "precision": describe_precision(m.get("precision"), short=True) if m.get("precision") else None,
                "prompt": t.get("prompt"), "model revision": r.model_version}.items()
            if v is not None}
    return out


def comparable(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Two (adapter, training set) rows compare when trained on the same set, or when one is the base model."""
    return a[1] == b[1] or NO_TRAIN_SET in (a[1], b[1])


AGREEMENT_NOTE = ("same answer: both protocols chose the same option (a generation's extracted label against "
                  "the harness's choice; an answer neither extracted counts as the same); same outcome: both right "
                  "or both wrong. A - B with a 95% paired bootstrap interval over the items; McNemar's exact p.")


def agreement_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (model, adapter, training set, dataset) and pair of the run's protocols, on the items both scored
    (each seed's items paired with the same seed's): the share of items with the same answer and with the same
    outcome, each protocol's accuracy and their difference with its paired interval."""
    rows = []
    for keys, group in runs.dropna(subset=["predictions"]).groupby([*FINETUNE_KEYS, "dataset"], sort=False):
        by_protocol: dict[str, dict] = {}
        for r in group.itertuples():
            items = {(r.seed, p["id"]): p for p in read_jsonl(r.predictions)}
            by_protocol.setdefault(r.protocol, {}).update(items)
        for a, b in itertools.combinations(sorted(by_protocol, key=PROTOCOL_ORDER.get), 2):
            x, y = by_protocol[a], by_protocol[b]
            shared = sorted(set(x) & set(y), key=str)
            if not shared:
                continue
            c = stats.paired_comparison({i: x[i]["correct"] for i in shared}, {i: y[i]["correct"] for i in shared},
                                        n_boot=2000)
            same = sum(x[i]["extracted"] == y[i]["extracted"] for i in shared) / len(shared)
            outcome = sum(x[i]["correct"] == y[i]["correct"] for i in shared) / len(shared)
            low, high = c["bootstrap_ci95"]
            rows.append({**dict(zip([*FINETUNE_KEYS, "dataset"], keys)), "A": a, "B": b, "n": c["n"],
                         "same answer (%)": round(100 * same, 1), "same outcome (%)": round(100 * outcome, 1),
                         "A (%)": round(100 * c["accuracy_a"], 1), "B (%)": round(100 * c["accuracy_b"], 1),
                         "A - B (points)": round(100 * c["difference"], 1),
                         "95% CI": f"[{100 * low:.1f}, {100 * high:.1f}]", "McNemar p": round(c["mcnemar_exact_p"], 4)})
    return pd.DataFrame(rows, columns=[*FINETUNE_KEYS, "dataset", "A", "B", "n", "same answer (%)",
                                       "same outcome (%)", "A (%)", "B (%)", "A - B (points)", "95% CI", "McNemar p"])


def contamination_table(report: dict) -> pd.DataFrame:
    """Training x evaluation overlap, one row per (level, training set)."""
    from pipeline_lib.data import contamination

    frames = [pd.DataFrame(contamination.table(report, level), columns=["training set"]).assign(level=level)
              if not report["pairs"] else pd.DataFrame(contamination.table(report, level)).assign(level=level)
              for level in report["levels"]]
    columns = ["level", "training set", *next(iter(report["pairs"].values()), {})]
    return pd.concat(frames)[columns] if frames else pd.DataFrame(columns=columns)


def write_contamination(report: dict, stem) -> list[Path]:
    caption = (f"Evaluation items whose question appears in the training set (overlapping / total); policy "
               f"`decontaminate: {report['policy']}` acts on the `{report['level']}` level. verbatim: identical after "
               f"collapsing whitespace; normalised: also case and punctuation; near: at least "
               f"{report['threshold']:.0%} of the item's word {report['ngram']}-grams appear in the other set.")
    return write_table(contamination_table(report), stem, caption, group="level")


def load_metrics(metrics_paths: list[str | Path]) -> dict[tuple, dict]:
    """Each fine-tune's metrics.json, keyed by the (model, adapter, training set, seed) labels it carries."""
    metrics = [read_json(p) for p in metrics_paths]
    return {(*(m[k] for k in FINETUNE_KEYS), m.get("seed")): m for m in metrics}
