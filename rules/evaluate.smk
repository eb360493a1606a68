# One evaluation per (model, run, training set, protocol, evaluation set); run `base` means no adapter.


rule evaluate:
    input:
        model=model_dir,
        adapter=adapter_input,
        data=paths.prepared_data("eval", "{dataset}"),
    output:
        predictions=paths.predictions("{model}", "{run}", "{train}", "{protocol}", "{dataset}"),
        score=paths.score("{model}", "{run}", "{train}", "{protocol}", "{dataset}"),
    params:
        files=lambda wc, input, output: cli(model=input.model, adapter_dir=input.adapter, data=input.data,
                                            predictions=output.predictions, score=output.score),
        options=lambda wc: cli(labels={**PLAN.labels(wc.model, wc.run, wc.train), "protocol": wc.protocol,
                                       "dataset": wc.dataset},
                               evaluation=PLAN.evaluation.settings(wc.dataset, wc.protocol),
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.evaluate(wc.model, wc.dataset, wc.protocol), PLAN.gpus("evaluate")),
    log:
        paths.log("evaluate", "{model}/{run}/{train}/{protocol}/{dataset}"),
    shell:
        script("evaluate", EVALUATE_PY, threads=True)
