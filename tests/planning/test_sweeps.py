"""Adapter families declared as grids: stable, readable names; every member an ordinary adapter; a grown grid
keeps its existing members' names (so their cached results are reused)."""
import pytest

from pipeline_lib.planning import sweeps


def test_grid_expands_to_named_adapters():
    members = sweeps.expand("lora", {"method": "lora", "lora_alpha": 64,
                                     "grid": {"r": [4, 8], "target_modules": ["attention", "mlp"]}})
    assert list(members) == ["lora-attention-r4", "lora-attention-r8", "lora-mlp-r4", "lora-mlp-r8"]
    assert members["lora-mlp-r8"] == {"method": "lora", "lora_alpha": 64, "r": 8, "target_modules": "mlp"}
    bottleneck = sweeps.expand("series", {"method": "series", "grid": {"bottleneck_size": [64, 256],
                                                                        "target_modules": ["mlp"]}})
    assert list(bottleneck) == ["series-mlp-b64", "series-mlp-b256"]
    assert list(sweeps.expand("prefix", {"method": "prefix_tuning", "grid": {"num_virtual_tokens": [10]}})) == \
        ["prefix-vt10"]


def test_a_grown_grid_keeps_existing_names_and_specs():
    small = sweeps.expand("lora", {"method": "lora", "grid": {"r": [8, 16]}})
    grown = sweeps.expand("lora", {"method": "lora", "grid": {"r": [4, 8, 16, 32]}})
    assert all(grown[name] == spec for name, spec in small.items())


def test_coordinates_for_the_figures():
    adapters, coords = sweeps.expand_all(
        {"series": {"method": "series", "grid": {"target_modules": ["attention", "mlp"], "bottleneck_size": [8]}}},
        {"lora": {"method": "lora"}})
    assert set(adapters) == {"lora", "series-attention-b8", "series-mlp-b8"}
    assert coords["series-mlp-b8"] == {"family": "series", "method": "series", "placement": "mlp",
                                       "size_key": "bottleneck_size", "size": 8}
    # a fixed placement is no placement-study coordinate
    _, fixed = sweeps.expand_all({"l": {"method": "lora", "target_modules": "both", "grid": {"r": [2]}}}, {})
    assert fixed["l-r2"]["placement"] is None and fixed["l-r2"]["size"] == 2


@pytest.mark.parametrize("family, spec, message", [
    ("x", {"method": "lora"}, r"sweeps.x: no `grid`"),
    ("x", {"method": "lora", "grid": {"r": 8}}, r"sweeps.x.grid.r: expected a non-empty list"),
    ("x", {"method": "lora", "r": 4, "grid": {"r": [8]}}, r"'r' is both a fixed option and a grid key"),
])
def test_bad_sweeps_are_refused_naming_the_key(family, spec, message):
    with pytest.raises(sweeps.SweepError, match=message):
        sweeps.expand(family, spec)


def test_clash_with_an_adapter_name():
    with pytest.raises(sweeps.SweepError, match="clashes"):
        sweeps.expand_all({"lora": {"method": "lora", "grid": {"r": [8]}}}, {"lora-r8": {"method": "lora"}})


def test_every_placement_name_of_a_sweep_attaches_on_every_architecture():
    """A sweep's placement coordinate must resolve, for each method family, to modules that exist."""
    from pipeline_lib.catalog.targets import ARCHITECTURES, known_modules, resolve_targets

    for arch in ARCHITECTURES:
        for method in ("lora", "series", "parallel"):
            for place in sweeps.PLACEMENT_NAMES:
                targets = resolve_targets(method, place, arch)
                assert targets and set(targets) <= set(known_modules(arch)), (arch, method, place)
