"""The `auto` precision rule (pipeline_lib/precision.py), with the probe's answers controlled: bf16 exactly where
oneDNN reports it and the probe finds it at least as fast as float32; cached per machine; forced by a variable."""
import pytest

from pipeline_lib import precision, resources

KEY = {"cpu": "Test CPU", "flags": ["avx2"], "capability": "AVX2", "torch": "x", "isa_variables": {},
       "bf16_reported": True}


@pytest.fixture()
def machine(monkeypatch, tmp_path):
    """A controllable CPU: its reported bf16 support and the probe's figures; counts the probes run."""
    state = {"key": dict(KEY), "figures": {"float32_gflops": 100.0, "bfloat16_gflops": 300.0}, "probes": 0}

    def probe():
        state["probes"] += 1
        return {"probe": "test", **state["figures"]}
    monkeypatch.setenv(precision.CACHE_VARIABLE, str(tmp_path))
    monkeypatch.delenv(precision.FORCE_VARIABLE, raising=False)
    monkeypatch.setattr(precision, "machine_key", lambda: dict(state["key"]))
    monkeypatch.setattr(precision, "probe", probe)
    return state


@pytest.mark.parametrize("reported, bf16, chosen", [(True, 300.0, "bfloat16"), (True, 100.0, "bfloat16"),
                                                    (True, 0.9, "float32"), (False, 300.0, "float32")])
def test_bf16_only_where_reported_and_measured_at_least_as_fast(machine, reported, bf16, chosen):
    machine["key"]["bf16_reported"] = reported
    machine["figures"]["bfloat16_gflops"] = bf16
    dtype, record = precision.resolve("auto", "cpu")
    assert dtype == record["chosen"] == chosen and record["requested"] == "auto"
    assert record["float32_gflops"] == 100.0 and record["bfloat16_gflops"] == bf16
    assert precision.training_autocast("auto", "cpu")[0] == ("bfloat16" if chosen == "bfloat16" else "none")


def test_the_answer_is_cached_per_machine(machine):
    precision.resolve("auto", "cpu")
    machine["figures"]["bfloat16_gflops"] = 1.0  # a second job on the same machine reads the cache
    assert precision.resolve("auto", "cpu")[0] == "bfloat16" and machine["probes"] == 1
    machine["key"]["isa_variables"] = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  # another machine, as far as bf16 goes
    assert precision.resolve("auto", "cpu")[0] == "float32" and machine["probes"] == 2


def test_forcing_and_explicit_settings_win(machine, monkeypatch):
    monkeypatch.setenv(precision.FORCE_VARIABLE, "0")
    dtype, record = precision.resolve("auto", "cpu")
    assert dtype == "float32" and record["forced"] == "PEFT_BENCH_CPU_BF16=0" and "forced" in precision.describe(record)
    assert precision.resolve("bfloat16", "cpu") == ("bfloat16", {"requested": "bfloat16", "chosen": "bfloat16",
                                                                  "device": "cpu"})
    assert precision.training_autocast("none", "cpu") == ("none", {"requested": "none", "chosen": "none",
                                                                    "device": "cpu"})
    assert machine["probes"] == 1


def test_descriptions_and_quantization(machine):
    record = precision.resolve("auto", "cpu")[1]
    assert precision.describe(record) == "bfloat16 (auto: cpu AVX2, bf16 matmul 300 vs float32 100 GFLOP/s)"
    assert precision.describe(record, short=True) == "bfloat16 (auto)"
    assert precision.describe(precision.resolve("float32", "cpu")[1]) == "float32 (set)"
    four = {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "auto"}
    assert precision.resolved_quantization(four, "cpu") == {**four, "compute_dtype": "bfloat16"}
    assert precision.resolved_quantization({"bits": 8}, "cpu") == {"bits": 8}
    assert precision.resolved_quantization(None, "cpu") is None


def test_estimates_plan_for_the_larger_precision_on_cpu():
    """Before a job runs, `auto` counts as float32 on CPU (never an estimate too small) and bf16 on CUDA."""
    assert precision.planned("auto", "cpu") == "float32" and precision.planned("auto", "cuda") == "bfloat16"
    training = {"micro_batch_size": 4, "cutoff_len": 256, "epochs": 1, "batch_size": 8, "autocast": "auto"}
    auto = resources.finetune(7e9, training, 1000, "cpu")["mem_mb"]
    assert auto == resources.finetune(7e9, {**training, "autocast": "none"}, 1000, "cpu")["mem_mb"]
    assert auto > resources.finetune(7e9, {**training, "autocast": "bfloat16"}, 1000, "cpu")["mem_mb"]
