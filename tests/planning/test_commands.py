"""The shell-quoting guard of every rule's command (pipeline_lib/planning/commands.py): no value can become shell
text, and an option without a value is left out instead of swallowing the next argument."""
import json
import shlex
import subprocess

import pytest

from pipeline_lib.planning.commands import cli


def argv(rendered: str) -> list[str]:
    """What a shell makes of the rendered text: the words a program receives."""
    done = subprocess.run(["bash", "-c", f"printf '%s\\0' {rendered}"], capture_output=True, check=True)
    return done.stdout.decode().split("\0")[:-1]


@pytest.mark.parametrize("hostile", ["a; rm -rf ~", "$(touch /tmp/pwned)", "`id`", "it's", 'say "hi"', "a b\tc",
                                     "x\ny", "--flag", "*", "~/x", "{a,b}", "$HOME"])
def test_every_value_reaches_the_program_as_one_word_unchanged(hostile):
    assert argv(cli(hostile, option=hostile, listed=[hostile, "b"])) == [hostile, "--option", hostile, "--listed",
                                                                          hostile, "b"]


def test_mappings_are_json_with_sorted_keys_and_options_without_values_are_left_out():
    rendered = cli(spec={"b": 1, "a": "x y"}, none=None, empty="", nothing=[], no=False, yes=True, zero=0)
    words = argv(rendered)
    assert words == ["--spec", json.dumps({"a": "x y", "b": 1}), "--yes", "--zero", "0"]
    assert json.loads(words[1]) == {"a": "x y", "b": 1}


def test_option_names_use_dashes_and_read_back_with_shlex():
    rendered = cli("pos", adapter_dir="/a b/c", lock_dir=".snakemake/gpu-locks")
    assert shlex.split(rendered) == ["pos", "--adapter-dir", "/a b/c", "--lock-dir", ".snakemake/gpu-locks"]
