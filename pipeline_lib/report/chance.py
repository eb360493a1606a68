"""What a guess would score, and what a response left unsaid: each cell's chance accuracy (1/k of its items' own
options, averaged, from the score files: evaluation/choices.py), whether its interval holds it, and the share of
responses with no extractable answer."""
from __future__ import annotations

import pandas as pd

from pipeline_lib.report.aggregate import ROW_KEYS

CHANCE_MARK = "◊"


def at_chance(cell) -> bool:
    """A cell whose 95% interval holds the accuracy of a uniform guess among its items' options."""
    chance = getattr(cell, "chance", None)
    return chance is not None and chance == chance and cell.ci_low <= chance <= cell.ci_high


def chance_notes(cells: pd.DataFrame) -> list[str]:
    """What a guess scores on each evaluation set (1/k per item, averaged over the items), and the ◊ legend."""
    if "chance" not in cells or cells.chance.isna().all():
        return []
    by_set = cells.groupby("dataset", sort=False).chance.first().dropna()
    marked = int(sum(at_chance(c) for c in cells.itertuples()))
    return [f"{CHANCE_MARK} the cell's 95% interval contains chance, the accuracy of a uniform guess among each "
            f"item's options ({marked} of {len(cells)} cells): " +
            ", ".join(f"{d} {100 * c:.1f}%" for d, c in by_set.items()) +
            "; sets whose answer is a number have none. The share of responses with no extractable answer is in "
            "the `answers` table."]


def answers_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per cell: accuracy with its interval, what a guess scores, whether the interval holds it, and the share of
    responses with no answer to extract (tuning for answer format can move accuracy without moving knowledge)."""
    frame = cells[[*ROW_KEYS, "dataset", "accuracy", "ci_low", "ci_high", "chance", "no_answer_share"]].copy()
    return pd.DataFrame({
        **{k: frame[k] for k in [*ROW_KEYS, "dataset"]}, "accuracy (%)": frame.accuracy.round(1),
        "95% CI": [f"[{100 * lo:.1f}, {100 * hi:.1f}]" for lo, hi in zip(frame.ci_low, frame.ci_high)],
        "chance (%)": (100 * frame.chance.astype(float)).round(1),
        "at chance": ["yes" if at_chance(c) else ("" if c.chance is None or c.chance != c.chance else "no")
                      for c in frame.itertuples()],
        "no answer (%)": (100 * frame.no_answer_share.astype(float)).round(1)})
