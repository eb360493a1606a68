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
        files=lambda wc, input, output: cli(model=input.model, adapter_dir=input.adapter, data=input.data,
                                            predictions=output.predictions, score=output.score),
        options=lambda wc: cli(labels={"model": wc.model, "adapter": wc.adapter, "train_set": wc.train,
                                       "dataset": wc.dataset},
                               evaluation=cfg.evaluation_settings(config, wc.dataset), **model_options(wc.model)),
    threads: THREADS
    resources:
        gpu=GPU,
        mem_mb=lambda wc: evaluate_estimate(wc)["mem_mb"],
        gpu_mem_mb=lambda wc: evaluate_estimate(wc)["gpu_mem_mb"],
        runtime=lambda wc: evaluate_estimate(wc)["runtime"],
    log:
        "logs/evaluate/{model}/{adapter}/{train}/{dataset}.log",
    shell:
        script("evaluate.py", EVALUATE_PY, threads=True)
