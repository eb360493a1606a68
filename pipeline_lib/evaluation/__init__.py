"""Evaluation: batched generation (generation.py), the two scorers of a protocol (generate.py: generate, extract,
score; loglikelihood.py: lm-eval's log-likelihoods), and the statistics of a score (stats.py)."""
