"""The tuning report's sensitivity figure (pipeline_lib/report/tuning.py): a panel per searched value, its ticks at
the values searched, written as plain numbers."""
from pipeline_lib.evaluation.selection import choose


def test_sensitivity_ticks_are_the_searched_values(tmp_path, monkeypatch):
    from pipeline_lib.report import formats, tuning

    trials = [{"trial": f"t{i}", "values": {"learning_rate": lr, "r": r}, "accuracy": acc, "loss": 1.0 - acc,
               "failed": None}
              for i, (lr, r, acc) in enumerate([(1e-4, 4, 0.1), (1e-4, 16, 0.2), (1e-3, 4, 0.3), (1e-3, 16, 0.1),
                                                (5e-3, 4, 0.25), (5e-3, 16, 0.05)])]
    selections = {("m", "lora", "mix"): choose("lora", "accuracy", trials)}
    captured = {}
    monkeypatch.setattr(formats, "save_figure", lambda fig, stem: captured.setdefault("fig", fig))
    tuning.sensitivity(selections, tmp_path / "sensitivity")
    fig = captured["fig"]
    fig.canvas.draw()
    labels = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes]
    assert labels == [["0.0001", "0.001", "0.005"], ["4", "16"]]
    assert [ax.get_xlabel() for ax in fig.axes] == ["learning rate", "r"]
    # each point is the best trial at that value: lr 1e-3 -> 0.3 (r=4), r=16 -> 0.2 (lr 1e-4)
    lr_line, r_line = (ax.get_lines()[0] for ax in fig.axes)
    assert list(lr_line.get_ydata()) == [20.0, 30.0, 25.0] and list(r_line.get_ydata()) == [30.0, 20.0]
