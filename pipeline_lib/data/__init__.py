"""Benchmark data: upstream files fetched and verified (fetch.py), parsed and validated (loaders.py, hf.py for the
`datasets` library), normalized, decontaminated and selected (prepare.py, contamination.py). What each dataset is:
pipeline_lib/catalog/datasets.py."""
