"""What every model job's command starts with: hold the job's `gpu` resource's count of GPUs of its own (the SLURM
allocation inside a SLURM job, else a lock per device), set CUDA_VISIBLE_DEVICES to them and become the command; with
--data-parallel and several GPUs, one torchrun process per GPU (pipeline_lib/runtime/gpu.py)."""
import argparse

from pipeline_lib.runtime.gpu import GpuError, run

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--gpus", type=int, required=True)
parser.add_argument("--lock-dir", required=True, help="the config's gpu_lock_dir (the rules pass it)")
parser.add_argument("--data-parallel", action="store_true",
                    help="start the command (python ...) as one torchrun process per GPU when N > 1")
parser.add_argument("command", nargs=argparse.REMAINDER)
args = parser.parse_args()
command = args.command[1:] if args.command[:1] == ["--"] else args.command
if not command:
    parser.error("no command given after --")
try:
    run(args.gpus, command, args.lock_dir, args.data_parallel)
except GpuError as e:
    raise SystemExit(f"on_gpus: {e}") from e
