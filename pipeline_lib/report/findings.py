"""What the run can conclude, written by the render job from the tests it ran (never by hand): which rows differ,
what is within chance, whether the ranking survived tuning, what merging changed, which forgetting differences are
real. Each finding names its evidence (the test, the adjusted p, the interval) and the table that holds the rest;
a finding that the data cannot support is not written, and "cannot be told apart" is a finding too."""
from __future__ import annotations

import pandas as pd

from pipeline_lib.report import comparisons

COLUMNS = ["topic", "finding", "evidence", "see"]
TAU = "Kendall's tau"


def findings(compared: dict[tuple, list[dict]], cells: pd.DataFrame, rank: pd.DataFrame | None = None,
             edges: list[str] = (), merging: dict | None = None, forgetting: pd.DataFrame | None = None
             ) -> pd.DataFrame:
    rows = [*_rows(compared), *_chance(cells), *_ranking(rank), *_edges(edges), *_merging(merging or {}),
            *_forgetting(forgetting)]
    return pd.DataFrame(rows, columns=COLUMNS)


def _rows(compared: dict[tuple, list[dict]]) -> list[dict]:
    """The average over the sets, block by block; then, over all per-set blocks, the pairs told apart."""
    out = []
    for (protocol, train, dataset), pairs in compared.items():
        if dataset != comparisons.AVERAGE:
            continue
        apart = [p for p in pairs if p["separable"]]
        smallest = min((p["p_holm"] for p in pairs), default=1.0)
        if apart:
            for p in apart:
                hi, lo = (p["A"], p["B"]) if p["difference"] > 0 else (p["B"], p["A"])
                out.append({"topic": "accuracy", "finding": f"{hi} is above {lo} on the average ({protocol}, "
                                                            f"{train}) by {100 * abs(p['difference']):.1f} points",
                            "evidence": f"paired sign-flip test, Holm-adjusted p = {p['p_holm']:.3g} over "
                                        f"{len(pairs)} pairs", "see": "significance"})
        else:
            names = {n for p in pairs for n in (p["A"], p["B"])}
            out.append({"topic": "accuracy", "finding": f"no two of the {len(names)} rows ({protocol}, {train}) can be "
                                                        f"told apart on the average",
                        "evidence": f"paired sign-flip test, smallest Holm-adjusted p = {smallest:.3g} over "
                                    f"{len(pairs)} pairs", "see": "significance"})
    per_set = [(k, p) for k, pairs in compared.items() if k[2] != comparisons.AVERAGE for p in pairs]
    apart = [(k, p) for k, p in per_set if p["separable"]]
    out.append({"topic": "accuracy",
                "finding": (f"on single sets, {len(apart)} of {len(per_set)} pairs are told apart: " +
                            "; ".join(f"{p['A']} vs {p['B']} on {k[2]}" for k, p in apart[:6]) +
                            (" ..." if len(apart) > 6 else "")) if apart else
                           f"on single sets, none of the {len(per_set)} pairs of rows is told apart",
                "evidence": "paired sign-flip test (exact McNemar with one seed), Holm within each set's block",
                "see": "significance"})
    return out


def _chance(cells: pd.DataFrame) -> list[dict]:
    from pipeline_lib.report.chance import at_chance

    if "chance" not in cells or cells.chance.isna().all():
        return []
    with_chance = [c for c in cells.itertuples() if c.chance is not None and c.chance == c.chance]
    near = [c for c in with_chance if at_chance(c)]
    return [{"topic": "chance", "finding": f"{len(near)} of {len(with_chance)} cells with a chance level cannot be "
                                          f"told from a uniform guess among their options",
             "evidence": "the cell's 95% interval contains 1/k averaged over its items",
             "see": "answers, accuracy_ci (◊)"}]


def _ranking(rank: pd.DataFrame | None) -> list[dict]:
    if rank is None or rank.empty:
        return []
    return [{"topic": "tuning", "finding": f"{r['model']} / {r['train_set']} ({r['protocol']}): {r['finding']}",
             "evidence": f"Kendall's tau {r[TAU]} with its bootstrap interval {r['tau 95% CI']}; swaps counted where "
                         f"the paired test (Holm) separates the pair under both settings",
             "see": "rank_stability"} for r in rank.to_dict("records")]


def _edges(edges: list[str]) -> list[dict]:
    return [{"topic": "tuning", "finding": e.removeprefix("tuning: "), "evidence": "the chosen value is the largest "
             "or smallest its axis tried", "see": "tuning, sensitivity"} for e in edges]


def _merging(merging: dict) -> list[dict]:
    out = []
    for key, r in merging.items():
        a = r.get("agreement")
        if not r.get("mergeable") or not a:
            continue
        n, changed = r["items"], a["different_response"]
        control, floor = r.get("float32_control"), r.get("precision_floor")
        text = f"{'/'.join(str(k) for k in key[:3])}: merging changed {changed} of {n} greedy responses in {r['dtype']}"
        if control and floor:
            text += (f"; in float32 {control['different_response']} of {n}; the {r['dtype']} precision alone changes "
                     f"{floor['different_response']} of {n} of the base model's")
            verdict = ("merging itself changes nothing beyond the precision's own rounding"
                       if control["different_response"] == 0 else "merging changes responses even in float32")
            text += f": {verdict}"
        speed = r.get("speedup")
        out.append({"topic": "merging", "finding": text + (f"; merged generates {speed:.2f}x the unmerged tokens/s"
                                                         if speed else ""),
                    "evidence": f"the same {n} items, greedy, merged in float32 then cast as the evaluation does; "
                                f"speed over {r['merged'].get('rounds', 1)} alternating rounds",
                    "see": "resources"})
    return out


def _forgetting(table: pd.DataFrame | None) -> list[dict]:
    if table is None or table.empty:
        return []
    apart = table[table["told apart"] == "yes"]
    text = ("forgetting differs between " + "; ".join(f"{r['A']} and {r['B']} ({r['A - B']:+.4f} nats/token)"
                                                     for r in apart.to_dict("records"))
            if len(apart) else f"no two fine-tunes' forgetting can be told apart ({len(table)} pairs)")
    return [{"topic": "forgetting", "finding": text,
             "evidence": "paired by window: bootstrap interval and sign-flip test over the windows, Holm per model",
             "see": "forgetting"}]
