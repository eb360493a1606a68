# One evaluation per (model, adapter, training set, evaluation set); adapter `base` means no adapter.


def adapter_input(wc):
    return [] if wc.adapter == cfg.BASE else [adapter_dir(wc.model, wc.adapter, wc.train)]


rule evaluate:
    input:
        model=model_dir,
        adapter=adapter_input,
        data="results/data/eval/{dataset}.jsonl",
    output:
        predictions="results/predictions/{model}/{adapter}/{train}/{dataset}.jsonl",
        score="results/scores/{model}/{adapter}/{train}/{dataset}.json",
    wildcard_constraints:
        model=alternation(config["models"]),
        adapter=alternation([cfg.BASE, *config["adapters"]]),
        train=alternation([cfg.NO_TRAIN_SET, *config["train_sets"]]),
        dataset=alternation(config["eval_sets"]),
    params:
        labels=lambda wc: json.dumps({"model": wc.model, "adapter": wc.adapter, "train_set": wc.train,
                                      "dataset": wc.dataset}),
        evaluation=json.dumps(config["evaluation"], sort_keys=True),
        adapter_dir=lambda wc, input: input.adapter[0] if input.adapter else "",
        trust=trust_flag,
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=lambda wc: evaluate_estimate(wc)["mem_mb"],
        gpu_mem_mb=lambda wc: evaluate_estimate(wc)["gpu_mem_mb"],
        runtime=lambda wc: evaluate_estimate(wc)["runtime"],
    log:
        "logs/evaluate/{model}/{adapter}/{train}/{dataset}.log",
    shell:
        EVALUATE_PY + " " + SCRIPTS + "/evaluate.py --model {input.model:q} --adapter-dir={params.adapter_dir:q} "
        "--data {input.data:q} --predictions {output.predictions:q} --score {output.score:q} "
        "--labels {params.labels:q} --evaluation {params.evaluation:q} --device " + config["device"] + " "
        "--threads {threads} --quantization " + config["quantization"] + " {params.trust} > {log:q} 2>&1"
