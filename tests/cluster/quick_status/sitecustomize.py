"""Status checks at most every 2 s, for the Snakemake that submits to the local test cluster (tests/pipeline/
test_slurm_cluster.py puts this folder on its PYTHONPATH).

The SLURM executor plugin (2.8.0) lengthens the wait between two status checks by 10 s after each check that finds
no job finished (1, 11, 21, ... s, up to 180 s): on a shared cluster that spares the scheduler; on this one-machine
cluster, whose jobs take seconds, it is idle waiting (about 12 s a stage, measured 2026-12-05). Every other part of
the submission (sbatch, squeue, retries, the jobs' own Snakemake) is the plugin's, unchanged: the cap is on the
executor base class's sleep, patched at the first import after that class exists (the plugin's own import, at
the latest, since it subclasses it)."""
import importlib.abc
import sys

CAP_S = 2.0


class _CapStatusWait(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        remote = sys.modules.get("snakemake_interface_executor_plugins.executors.remote")
        executor = getattr(remote, "RemoteExecutor", None)
        if executor is not None:
            sys.meta_path.remove(self)

            async def capped_sleep(instance, _sleep=executor.sleep):
                instance.next_seconds_between_status_checks = min(instance.next_seconds_between_status_checks, CAP_S)
                await _sleep(instance)

            executor.sleep = capped_sleep
        return None


sys.meta_path.insert(0, _CapStatusWait())
