"""The library behind the PEFT benchmark pipeline, one subpackage per stage; imports point one way, down this list
(tests/test_layout.py checks it):

  runtime/     atomic files, the allocator setting of the jobs, GPU allocation (imports nothing of the package)
  catalog/     torch-free facts: methods, targets, datasets, answer types, options, suites, protocols, prompts, base
               models, the precision vocabulary, published names, training settings
  planning/    config -> run plan (validation, sweeps, estimates, paths, commands, the render plan); torch-free, so
               the Snakefile's parse never imports torch
  data/        fetch, load, validate, normalize, contamination, select
  models/      load and convert base models, the precision a job computes in
  adapters/    attach / save / load / merge through a family backend; bottleneck/ is ours
  training/    the loop, checkpoints, data parallelism
  evaluation/  generation, the generate and log-likelihood scorers, statistics of a score
  report/      aggregate, tables, figures, the outputs catalogue, published results
  jobs.py      the model-touching jobs the entry points call
  cli/         the entry points (argument parsing only)
  tools/       the support matrix, paper counts, a CPU load generator: tests and docs use them, no job imports them
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("peft-bench")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
