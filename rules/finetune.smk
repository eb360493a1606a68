# One fine-tune per (model, run, training set): a run is an adapter, or one seed of it (<adapter>-seed<N>); under
# tuning also each trial (<adapter>.trial-<values>) and the chosen setting (<adapter>.tuned), which reads its
# adapter's selection.


rule finetune:
    input:
        model=model_dir,
        data=paths.prepared_data("train", "{train}"),
        selection=selection_input,
    output:
        directory(paths.adapter_dir("{model}", "{run}", "{train}")),
    params:
        files=lambda wc, input, output: cli(model=input.model, data=input.data, out=output[0],
                                            selection=input.selection),
        # settings as params: changing an adapter's options re-runs that adapter's jobs only
        options=lambda wc: cli(adapter=PLAN.training.adapter_spec(wc.run), training=PLAN.training.train_config(wc.run),
                               labels=PLAN.labels(wc.model, wc.run, wc.train),
                               allow_failure=PLAN.training.is_trial(wc.run), **PLAN.model_options(wc.model)),
    threads: THREADS
    # the longest jobs, each gating its evaluations: started first, the shorter jobs fill the cores beside them
    priority: 10
    resources:
        **model_job(lambda wc: ESTIMATES.finetune(wc.model, wc.run, wc.train), PLAN.gpus("finetune")),
    log:
        paths.log("finetune", "{model}/{run}/{train}"),
    shell:
        script("finetune", FINETUNE_PY, threads=True)
