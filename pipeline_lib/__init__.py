"""The library behind the PEFT benchmark pipeline, one subpackage per stage; imports point one way, down this list
(tests/test_layout.py checks it). Each stage owns its jobs: the function a rule's script (scripts/<rule>.py) calls.

  runtime/     atomic files and fingerprints, the jobs' allocator setting, GPU allocation (imports nothing of ours)
  catalog/     torch-free facts: methods, targets, datasets, answer types, options, suites, protocols, prompts, base
               models, the precision vocabulary, published names, training settings
  planning/    config -> run plan with a view per stage (validation, sweeps, tuning, estimates, paths, the jobs'
               command lines, the render plan, the config reference); torch-free, so the Snakefile's parse never
               imports torch
  data/        fetch, load, validate, normalize, contamination, select, mix (the data jobs)
  models/      load and convert base models (the model jobs), the precision a job computes in
  adapters/    attach / save / load / merge through a family backend; bottleneck/ is ours
  training/    the loop, checkpoints, data parallelism; job.py: the fine-tune job
  evaluation/  generation, the generate and log-likelihood scorers, statistics of a score, selection (the
               select_setting job); jobs.py: the evaluate, validate, forgetting and merging jobs
  report/      aggregate, tables, figures, the outputs catalogue, published results; render.py: the render job
  support/     the adapter support matrix (checks, its documents, paper-size parameter counts, the CUDA check):
               docs and users run it, no job imports it
  testing/     what tests and benchmarks build on (tiny random models, a bursty CPU load), as numpy.testing
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("peft-bench")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
