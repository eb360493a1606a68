"""From scores to what a reader sees: per-item outcomes aggregated over seeds, tables, figures, the catalogue of
both, and the published results beside ours."""
