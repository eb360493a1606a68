"""The local SLURM cluster's own checks (tests/cluster/local_slurm.py), on any machine: why a machine cannot run
it is said in one line, so that the cluster tests skip with that reason."""
from cluster import local_slurm


def test_each_missing_requirement_is_named(monkeypatch):
    monkeypatch.setattr(local_slurm, "DAEMONS", ("no-such-slurmd",))
    assert local_slurm.problem().startswith("no-such-slurmd not installed (apt-get install")
    monkeypatch.setattr(local_slurm, "DAEMONS", ())
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 1000)
    assert "needs root" in local_slurm.problem()
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 0)
    monkeypatch.setattr(local_slurm, "DEFAULT_CONF", local_slurm.Path("/nonexistent/slurm.conf"))
    monkeypatch.setattr(local_slurm, "_host_address", lambda: "10.1.2.3")
    assert "resolves to 10.1.2.3, not 127.x" in local_slurm.problem()
    monkeypatch.setattr(local_slurm, "_host_address", lambda: "127.0.1.1")
    assert local_slurm.problem() is None


def test_an_existing_slurm_configuration_is_left_alone(monkeypatch, tmp_path):
    real = tmp_path / "slurm.conf"
    real.write_text("ClusterName=real\n")
    monkeypatch.setattr(local_slurm, "DAEMONS", ())
    monkeypatch.setattr(local_slurm.os, "geteuid", lambda: 0)
    monkeypatch.setattr(local_slurm, "DEFAULT_CONF", real)
    assert "exists (a real cluster's" in local_slurm.problem()


def test_job_records_parse_scontrols_one_line_format():
    line = ("JobId=7 JobName=x JobState=COMPLETED Reason=None Partition=gpu TimeLimit=00:11:00 NumCPUs=1 "
            "MinMemoryNode=4G Comment=rule_finetune_wildcards_tiny-llama_lora_gsm8k_train TresPerJob=gres:gpu:1")
    record = local_slurm._record(line)
    assert record["JobId"] == "7" and record["TresPerJob"] == "gres:gpu:1" and record["MinMemoryNode"] == "4G"
