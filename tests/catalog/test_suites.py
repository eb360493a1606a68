"""Evaluation suites as data (pipeline_lib/catalog/suites.py): each protocol takes its generation settings from the
set's suite, and upstream's own values are the paper protocol's."""
import pytest

from helpers import function, settings
from pipeline_lib.catalog import suites


def test_upstreams_caps_and_beams_are_the_paper_protocols():
    math, commonsense = suites.SUITES["math"], suites.SUITES["commonsense"]
    assert (math.paper_max_new_tokens, commonsense.paper_max_new_tokens) == (256, 32)
    for suite in ("math", "commonsense"):
        paper = settings({}, suite, "paper")
        assert paper["batch_size"] == 1 and paper["stop_strings"] == [] and paper["generation"]["num_beams"] == 4
        assert paper["max_new_tokens"] == suites.SUITES[suite].paper_max_new_tokens


@pytest.mark.parametrize("script, suite", [("evaluate.py", "math"), ("commonsense_evaluate.py", "commonsense")])
def test_the_paper_values_are_upstreams_own(data_mirror, script, suite):
    """upstream's `evaluate` function's keyword defaults: its beam-search arguments and max_new_tokens (256 / 32)."""
    import inspect

    evaluate = function(data_mirror, script, "evaluate", {"torch": None, "GenerationConfig": None})
    defaults = {k: p.default for k, p in inspect.signature(evaluate).parameters.items()
                if p.default is not inspect.Parameter.empty}
    assert {k: defaults[k] for k in suites.PAPER_GENERATION} == suites.PAPER_GENERATION
    assert defaults["max_new_tokens"] == suites.SUITES[suite].paper_max_new_tokens


def test_generate_takes_the_suites_cap_unless_the_config_sets_one():
    assert settings({}, "math")["max_new_tokens"] == 256 and settings({}, "commonsense")["max_new_tokens"] == 32
    assert settings({"max_new_tokens": 64}, "math")["max_new_tokens"] == 64
    assert settings({}, "math")["stop_strings"] == list(suites.RUN_ON)
