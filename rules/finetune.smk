# One fine-tune per (model, adapter, training set).


rule finetune:
    input:
        model=model_dir,
        data="results/data/train/{train}.jsonl",
    output:
        directory("results/adapters/{model}/{adapter}/{train}"),
    wildcard_constraints:
        model=alternation(config["models"]),
        adapter=alternation(config["adapters"]),
        train=alternation(config["train_sets"]),
    params:
        # as params, so that changing an adapter's options re-runs that adapter's jobs only
        files=lambda wc, input, output: cli(model=input.model, data=input.data, out=output[0]),
        options=lambda wc: cli(adapter=cfg.adapter_spec(config, wc.adapter),
                               training=cfg.train_config(config, wc.adapter), **model_options(wc.model)),
    threads: THREADS
    resources:
        gpu=FINETUNE_GPUS,
        # estimates (pipeline_lib/resources.py) so that a scheduler does not overcommit
        mem_mb=lambda wc: finetune_estimate(wc)["mem_mb"],
        gpu_mem_mb=lambda wc: finetune_estimate(wc)["gpu_mem_mb"],
        runtime=lambda wc: finetune_estimate(wc)["runtime"],
    log:
        "logs/finetune/{model}/{adapter}/{train}.log",
    shell:
        script("finetune.py", FINETUNE_PY, threads=True)
