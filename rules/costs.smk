# What each fine-tune costs and forgets beyond its accuracy (config `costs:`), jobs of their own so that adding
# them re-runs no fine-tune: `forgetting` (cross-entropy on reference text, adapter disabled vs enabled; the
# disabled pass is the base model's, computed once per model by `forgetting_base`) and `merging` (the same items generated unmerged and merged, timed, compared item by item; only where the method can
# merge on an unquantized base).


rule forgetting_base:
    input:
        model=model_dir,
        reference=PLAN.costs.forgetting_inputs(),
    output:
        paths.forgetting_base("{model}"),
    params:
        files=lambda wc, input, output: cli(output[0], model=input.model),
        options=lambda wc: cli(**PLAN.costs.forgetting_options(), **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.forgetting(wc.model), PLAN.gpus("evaluate")),
    log:
        paths.log("forgetting_base", "{model}"),
    shell:
        script("forgetting_base", EVALUATE_PY, threads=True)


rule forgetting:
    input:
        model=model_dir,
        adapter=paths.adapter_dir("{model}", "{run}", "{train}"),
        base=paths.forgetting_base("{model}"),
        reference=PLAN.costs.forgetting_inputs(),
    output:
        paths.forgetting("{model}", "{run}", "{train}"),
    params:
        files=lambda wc, input, output: cli(output[0], model=input.model, adapter_dir=input.adapter, base=input.base),
        options=lambda wc: cli(labels=PLAN.labels(wc.model, wc.run, wc.train), **PLAN.costs.forgetting_options(),
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.forgetting(wc.model), PLAN.gpus("evaluate")),
    log:
        paths.log("forgetting", "{model}/{run}/{train}"),
    shell:
        script("forgetting", EVALUATE_PY, threads=True)


rule merging:
    input:
        model=model_dir,
        adapter=paths.adapter_dir("{model}", "{run}", "{train}"),
        data=lambda wc: paths.prepared_data("eval", PLAN.costs.merging_dataset),
    output:
        paths.merging("{model}", "{run}", "{train}"),
    params:
        files=lambda wc, input, output: cli(output[0], model=input.model, adapter_dir=input.adapter,
                                            data=input.data),
        options=lambda wc: cli(labels=PLAN.labels(wc.model, wc.run, wc.train), items=PLAN.costs.merging["items"],
                               evaluation=PLAN.evaluation.settings(PLAN.costs.merging_dataset, "generate"),
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.evaluate(wc.model, PLAN.costs.merging_dataset, "generate"),
                    PLAN.gpus("evaluate")),
    log:
        paths.log("merging", "{model}/{run}/{train}"),
    shell:
        script("merging", EVALUATE_PY, threads=True)
