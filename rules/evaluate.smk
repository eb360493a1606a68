# One evaluation per (model, run, training set, protocol, evaluation set); run `base` means no adapter.


def adapter_input(wildcards):
    return [] if wildcards.run == BASE else [paths.adapter_dir(wildcards.model, wildcards.run, wildcards.train)]


rule evaluate:
    input:
        model=model_dir,
        adapter=adapter_input,
        data=paths.prepared_data("eval", "{dataset}"),
    output:
        predictions=paths.predictions("{model}", "{run}", "{train}", "{protocol}", "{dataset}"),
        score=paths.score("{model}", "{run}", "{train}", "{protocol}", "{dataset}"),
    wildcard_constraints:
        model=alternation(PLAN.models),
        run=alternation([BASE, *PLAN.runs]),
        train=alternation([NO_TRAIN_SET, *PLAN.train_sets]),
        protocol=alternation(PLAN.protocols),
        dataset=alternation(PLAN.eval_sets),
    params:
        files=lambda wc, input, output: cli(model=input.model, adapter_dir=input.adapter, data=input.data,
                                            predictions=output.predictions, score=output.score),
        options=lambda wc: cli(labels={**PLAN.labels(wc.model, wc.run, wc.train), "protocol": wc.protocol,
                                       "dataset": wc.dataset},
                               evaluation=PLAN.evaluation_settings(wc.dataset, wc.protocol),
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        gpu=PLAN.gpus("evaluate"),
        mem_mb=lambda wc: ESTIMATES.evaluate(wc.model, wc.dataset, wc.protocol)["mem_mb"],
        gpu_mem_mb=lambda wc: ESTIMATES.evaluate(wc.model, wc.dataset, wc.protocol)["gpu_mem_mb"],
        runtime=lambda wc: ESTIMATES.evaluate(wc.model, wc.dataset, wc.protocol)["runtime"],
    log:
        paths.log("evaluate", "{model}/{run}/{train}/{protocol}/{dataset}"),
    shell:
        script("evaluate", EVALUATE_PY, threads=True)
