# One evaluation job per row (model, run, training set; run `base` means no adapter): the model is loaded once and
# every (protocol, evaluation set) of the run is scored in the same process, the generation protocols' prompts of
# all sets decoded together (more rows per step). Each set keeps its own predictions and score; they are `update`
# outputs, not deleted when the job re-runs, and a set whose score was made from the same inputs, settings and code
# (its fingerprint) is kept as it is: a set added to the config costs that set alone (docs/evaluation.md).


rule evaluate:
    input:
        model=model_dir,
        adapter=adapter_input,
        data=[paths.prepared_data("eval", d) for _, d in PLAN.evaluation.pairs],
    output:
        predictions=[update(paths.predictions("{model}", "{run}", "{train}", p, d)) for p, d in PLAN.evaluation.pairs],
        score=[update(paths.score("{model}", "{run}", "{train}", p, d)) for p, d in PLAN.evaluation.pairs],
    params:
        files=lambda wc, input, output: cli(model=input.model, adapter_dir=input.adapter,
                                            sets=evaluation_sets(input.data, output.predictions, output.score)),
        options=lambda wc: cli(labels=PLAN.labels(wc.model, wc.run, wc.train),
                               settings=[PLAN.evaluation.settings(d, p) for p, d in PLAN.evaluation.pairs],
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.evaluate_row(wc.model), PLAN.gpus("evaluate")),
    log:
        paths.log("evaluate", "{model}/{run}/{train}"),
    shell:
        script("evaluate", EVALUATE_PY, threads=True)
