"""Scaffolding for tests, docs and benchmarks, never imported by a job: the adapter support matrix's checks, the
paper's parameter counts, a bursty CPU load."""
