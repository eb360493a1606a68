# Upstream files (downloaded, or copied from config data.mirror), validated and normalized, checked for
# train/test overlap, then selected for the run (decontamination policy, subsample).


rule fetch_data:
    output:
        "resources/data/{relpath}",
    wildcard_constraints:
        relpath=alternation(s.relpath for s in SOURCES.values()),
    params:
        source=lambda wc: json.dumps(asdict(next(s for s in SOURCES.values() if s.relpath == wc.relpath))),
    log:
        "logs/fetch_data/{relpath}.log",
    run:
        # The mirror is read here rather than declared as a param: where the bytes come from does not
        # change them (sha256-verified), so switching mirror <-> download must not re-run anything.
        mirror = config["data"]["mirror"] or ""
        shell(PY + " " + SCRIPTS + "/fetch_data.py {params.source:q} {output:q} --mirror {mirror:q} > {log:q} 2>&1")


rule normalize_data:
    input:
        lambda wc: raw_path(wc.name),
    output:
        "results/data/full/{name}.jsonl",
    wildcard_constraints:
        name=alternation(DATASETS),
    params:
        spec=lambda wc: json.dumps({k: getattr(DATASETS[wc.name], k) for k in ("name", "loader", "split", "answer_type")}),
    log:
        "logs/normalize_data/{name}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_data.py normalize --spec {params.spec:q} {input:q} {output:q} > {log:q} 2>&1"


rule contamination:
    input:
        train=[full_path(n) for n in TRAIN_PARTS],
        eval=[full_path(n) for n in config["eval_sets"]],
    output:
        CONTAMINATION,
    params:
        train=[f"{n}={full_path(n)}" for n in TRAIN_PARTS],
        eval=[f"{n}={full_path(n)}" for n in config["eval_sets"]],
        ngram=config["contamination"]["ngram"],
        threshold=config["contamination"]["threshold"],
        level=config["contamination"]["level"],
        policy=config["decontaminate"],
    log:
        "logs/contamination/contamination.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_data.py contamination {output:q} --train {params.train:q} "
        "--eval {params.eval:q} --ngram {params.ngram} --threshold {params.threshold} --level {params.level} "
        "--policy {params.policy} > {log:q} 2>&1"


rule prepare_data:
    input:
        full=lambda wc: full_path(wc.name),
        # only the split the policy drops from depends on the run's other sets; under `fail`, training waits
        # for the check
        contamination=lambda wc: [CONTAMINATION] if config["decontaminate"] in (wc.split, "fail" if wc.split == "train" else None) else [],
    output:
        "results/data/{split}/{name}.jsonl",
    wildcard_constraints:
        split="train|eval",
        name=alternation(DATASETS),
    params:
        limit_arg=lambda wc: (f"--limit {cfg.data_limit(config, wc.name, wc.split)}"
                              if cfg.data_limit(config, wc.name, wc.split) else ""),
        seed=config["data"]["seed"],
        policy=config["decontaminate"],
        level=config["contamination"]["level"],
        report_arg=lambda wc, input: f"--contamination {shlex.quote(input.contamination[0])}" if input.contamination else "",
    log:
        "logs/prepare_data/{split}/{name}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_data.py select {wildcards.name:q} {wildcards.split} {input.full:q} "
        "{output:q} {params.limit_arg} --seed {params.seed} --policy {params.policy} --level {params.level} "
        "{params.report_arg} > {log:q} 2>&1"


rule mix_data:
    input:
        lambda wc: [f"results/data/train/{part}.jsonl" for part in config["mixtures"][wc.mixture]],
    output:
        "results/data/train/{mixture}.jsonl",
    wildcard_constraints:
        mixture=alternation(config["mixtures"]),
    log:
        "logs/mix_data/{mixture}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_data.py mix {output:q} {input:q} > {log:q} 2>&1"
