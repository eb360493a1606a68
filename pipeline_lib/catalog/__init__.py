"""Torch-free facts every stage reads: methods, target modules, datasets, answer types, commonsense options, suites,
evaluation protocols, prompt templates, base models, the precision vocabulary, published names, training settings."""
