import pandas as pd

from pipeline_lib import report
from pipeline_lib.files import write_json


def _scores(tmp_path):
    paths = []
    for adapter, train_set, accs in [("base", "none", (0.1, 0.2)), ("lora", "gsm8k_train", (0.3, 0.5))]:
        for dataset, acc in zip(["gsm8k", "AQuA"], accs):
            path = tmp_path / f"{adapter}-{dataset}.json"
            write_json(path, {"model": "m", "adapter": adapter, "train_set": train_set, "dataset": dataset,
                              "accuracy": acc, "n": 10})
            paths.append(path)
    return paths


def test_accuracy_table_has_paper_layout(tmp_path):
    table = report.accuracy_table(report.collect(_scores(tmp_path)), ["gsm8k", "AQuA", "SVAMP"])
    assert list(table.columns) == ["model", "adapter", "train_set", "gsm8k", "AQuA", "average"]
    lora = table[table.adapter == "lora"].iloc[0]
    assert (lora.gsm8k, lora.AQuA, lora.average) == (30.0, 50.0, 40.0)
    assert table[table.adapter == "base"].iloc[0].average == 15.0


def test_tables_and_figure_are_written(tmp_path):
    table = report.accuracy_table(report.collect(_scores(tmp_path)), ["gsm8k", "AQuA"])
    report.write_tables(table, tmp_path / "t.csv", tmp_path / "t.md")
    written = pd.read_csv(tmp_path / "t.csv")
    assert written["marks"].isna().all()  # no contamination marks given
    pd.testing.assert_frame_equal(written.drop(columns="marks"), table, check_dtype=False, check_names=False)
    md = (tmp_path / "t.md").read_text().splitlines()
    assert [c.strip() for c in md[0].split("|")[1:-1]] == ["model", "adapter", "train_set", "gsm8k", "AQuA", "average"]
    assert "40.0" in md[3]
    report.plot_accuracy(table, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
