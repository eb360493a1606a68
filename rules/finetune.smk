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
        adapter=lambda wc: json.dumps(cfg.adapter_spec(config, wc.adapter), sort_keys=True),
        training=lambda wc: json.dumps(cfg.train_config(config, wc.adapter), sort_keys=True),
        trust=trust_flag,
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
        FINETUNE_PY + " " + SCRIPTS + "/finetune.py --model {input.model:q} --data {input.data:q} --out {output:q} "
        "--adapter {params.adapter:q} --training {params.training:q} --device " + config["device"] + " "
        "--threads {threads} --quantization " + config["quantization"] + " {params.trust} > {log:q} 2>&1"
