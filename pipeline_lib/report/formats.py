"""How the report's files are written, the leaf every table and figure writer uses: the formats of each kind (a table
as CSV, the HTML report's, plus Markdown and LaTeX; a figure as PNG, the report's, plus PDF; a page as HTML), the
table and figure writers (each file written atomically), and the figures' shared palette."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline_lib.runtime.files import atomic_path

FORMATS = {"table": ("csv", "md", "tex"), "figure": ("png", "pdf"), "page": ("html",)}
REPORTED = {"table": "csv", "figure": "png", "page": "html"}  # the file the HTML report shows
# Okabe-Ito colours (safe for colour-blind readers) with distinct markers and hatches, so figures also read in grey
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++", "--", "oo"]


def write_table(table: pd.DataFrame, stem: str | Path, caption: str | None, notes: list[str] = (),
          shown: pd.DataFrame | None = None, floatfmt: str = "g", group: str | None = None) -> list[Path]:
    """`stem`.csv (`table`), .md and .tex (`shown`, the table as text, when given), each written atomically.
    With `group`, the Markdown has one sub-table per value of that column."""
    stem, shown = Path(stem), table if shown is None else shown
    paths = [stem.with_suffix(f".{ext}") for ext in FORMATS["table"]]  # csv, md, tex
    with atomic_path(paths[0]) as tmp:
        table.to_csv(tmp, index=False)
    if group:
        body = "".join(f"\n### {value}\n{part.drop(columns=group).to_markdown(index=False, floatfmt=floatfmt)}\n"
                       for value, part in shown.groupby(group, sort=False))
    else:
        body = f"\n{shown.to_markdown(index=False, floatfmt=floatfmt)}\n"
    with atomic_path(paths[1]) as tmp:
        tmp.write_text((f"{caption}\n" if caption else "") + body.lstrip("\n" if not caption else "")
                       + "".join(f"\n{n}\n" for n in notes), encoding="utf-8")
    with atomic_path(paths[2]) as tmp:
        tex = shown.map(_latex_cell).rename(columns=_latex_cell)
        tmp.write_text(tex.to_latex(index=False, escape=False, caption=_latex_cell(caption or stem.name),
                                    label=f"tab:{stem.name}"), encoding="utf-8")
    return paths


def _latex_cell(value):
    """Escape LaTeX specials; Markdown bold (**x**) becomes \\textbf{x}, the marks become superscripts."""
    if not isinstance(value, str):
        return value
    for char in "&%$#_{}":
        value = value.replace(char, "\\" + char)
    value = re.sub(r"\*\*(.+?)\*\*", r"\\textbf{\1}", value)
    return value.replace("†", "$^\\dagger$").replace("‡", "$^\\ddagger$").replace("◊", "$^\\diamond$")


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9})
    return plt


def save_figure(fig, stem: str | Path) -> list[Path]:
    """`stem`.png (150 dpi) and `stem`.pdf, each written atomically."""
    stem = Path(stem)
    paths = []
    for ext in FORMATS["figure"]:  # png, pdf
        with atomic_path(stem.with_suffix(f".{ext}")) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
        paths.append(stem.with_suffix(f".{ext}"))
    pyplot().close(fig)
    return paths
