# One fine-tune per (model, adapter, training set).


rule finetune:
    input:
        model=model_dir,
        data=paths.prepared_data("train", "{train}"),
    output:
        directory(paths.adapter_dir("{model}", "{adapter}", "{train}")),
    wildcard_constraints:
        model=alternation(PLAN.models),
        adapter=alternation(PLAN.runs),  # an adapter's name, or <adapter>-seed<N> for each of its seeds
        train=alternation(PLAN.train_sets),
    params:
        files=lambda wc, input, output: cli(model=input.model, data=input.data, out=output[0]),
        # settings as params: changing an adapter's options re-runs that adapter's jobs only
        options=lambda wc: cli(adapter=PLAN.adapter_spec(wc.adapter), training=PLAN.train_config(wc.adapter),
                               labels=PLAN.labels(wc.model, wc.adapter, wc.train),
                               **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        gpu=PLAN.gpus("finetune"),
        # estimates (pipeline_lib/resources.py) so that a scheduler does not overcommit
        mem_mb=lambda wc: PLAN.finetune_estimate(wc.model, wc.adapter, wc.train)["mem_mb"],
        gpu_mem_mb=lambda wc: PLAN.finetune_estimate(wc.model, wc.adapter, wc.train)["gpu_mem_mb"],
        runtime=lambda wc: PLAN.finetune_estimate(wc.model, wc.adapter, wc.train)["runtime"],
    log:
        paths.log("finetune", "{model}/{adapter}/{train}"),
    shell:
        script("finetune.py", FINETUNE_PY, threads=True)
