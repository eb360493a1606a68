"""The catalogue of tables and figures (pipeline_lib/report/outputs.py) that the render rule and job both read."""
from helpers import ROOT
from pipeline_lib.report import formats, outputs


def test_every_captioned_output_has_its_caption_file_and_names_are_unique():
    for o in outputs.CATALOGUE:
        assert o.kind in formats.FORMATS
        if o.caption:
            assert (ROOT / "captions" / f"{o.caption}.rst").read_text().strip(), o.caption
    files = outputs.declared_files({"s": {"placement": "mlp", "size": 4}}, ["generate"])
    assert len(files) == len(set(files))


def test_sweep_figures_apply_only_to_runs_that_sweep_their_coordinate():
    names = lambda sweeps: {o.name for o in outputs.applicable(sweeps, ["generate"]) if o.kind == "figure"}  # noqa: E731
    plain = names({})
    assert plain == {"accuracy", "tradeoff", "pareto", "loss", "time"}
    assert names({"lora-r4": {"placement": None, "size": 4}}) == plain | {"size"}
    assert names({"lora-mlp": {"placement": "mlp", "size": None}}) == plain | {"placement"}
    assert "results/tables/accuracy_seeds.md" in outputs.declared_files({}, ["generate"])
