"""A run planned from its config before any job: names and options checked, sweeps expanded, per-job settings,
resource estimates, artifact paths, command lines, the render plan. Torch-free: the Snakefile parses with it."""
