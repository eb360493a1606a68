"""The command-line entry points the rules run (`python -m pipeline_lib.cli.<name>`, or the console scripts of
pyproject.toml): argument parsing, then one call into the library. `common.py`: what they share."""
