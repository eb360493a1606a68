# One fine-tune per (model, run, training set): a run is an adapter, or one seed of it (<adapter>-seed<N>); under
# tuning also each trial (<adapter>.trial-<values>) and the chosen setting (<adapter>.tuned), which reads its
# adapter's selection.


def selection_input(wildcards):
    adapter = PLAN.tunes(wildcards.run)
    return [paths.selection(wildcards.model, adapter, wildcards.train)] if adapter else []


rule finetune:
    input:
        model=model_dir,
        data=paths.prepared_data("train", "{train}"),
        selection=selection_input,
    output:
        directory(paths.adapter_dir("{model}", "{run}", "{train}")),
    wildcard_constraints:
        model=alternation(PLAN.models),
        run=alternation(PLAN.runs),  # an adapter's name, or <adapter>-seed<N> for each of its seeds
        train=alternation(PLAN.train_sets),
    params:
        files=lambda wc, input, output: cli(model=input.model, data=input.data, out=output[0],
                                            selection=input.selection),
        # settings as params: changing an adapter's options re-runs that adapter's jobs only
        options=lambda wc: cli(adapter=PLAN.adapter_spec(wc.run), training=PLAN.train_config(wc.run),
                               labels=PLAN.labels(wc.model, wc.run, wc.train),
                               allow_failure=PLAN.is_trial(wc.run), **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        gpu=PLAN.gpus("finetune"),
        # estimates (pipeline_lib/planning/estimates.py) so that a scheduler does not overcommit
        mem_mb=lambda wc: ESTIMATES.finetune(wc.model, wc.run, wc.train)["mem_mb"],
        gpu_mem_mb=lambda wc: ESTIMATES.finetune(wc.model, wc.run, wc.train)["gpu_mem_mb"],
        runtime=lambda wc: ESTIMATES.finetune(wc.model, wc.run, wc.train)["runtime"],
    log:
        paths.log("finetune", "{model}/{run}/{train}"),
    shell:
        script("finetune", FINETUNE_PY, threads=True)
