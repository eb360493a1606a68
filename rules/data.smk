# Upstream files (downloaded, or copied from config data.mirror) and their normalized JSONL.


rule fetch_data:
    output:
        "resources/data/{relpath}",
    wildcard_constraints:
        relpath=alternation(s.relpath for s in SOURCES.values()),
    log:
        "logs/fetch_data/{relpath}.log",
    run:
        # The mirror is read here rather than declared as a param: where the bytes come from does not
        # change them (sha256-verified), so switching mirror <-> download must not re-run anything.
        mirror = config["data"]["mirror"] or ""
        shell(PY + " " + SCRIPTS + "/fetch_data.py {wildcards.relpath:q} {output:q} --mirror {mirror:q} > {log:q} 2>&1")


rule prepare_data:
    input:
        lambda wc: raw_path(wc.name),
    output:
        "results/data/{split}/{name}.jsonl",
    wildcard_constraints:
        split="train|eval",
        name=alternation(DATASETS),
    params:
        limit=lambda wc: cfg.data_limit(config, wc.name, wc.split),
        limit_arg=lambda wc: (f"--limit {cfg.data_limit(config, wc.name, wc.split)}"
                              if cfg.data_limit(config, wc.name, wc.split) else ""),
        seed=config["data"]["seed"],
    log:
        "logs/prepare_data/{split}/{name}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_data.py {wildcards.name:q} {input:q} {output:q} {params.limit_arg} "
        "--seed {params.seed} > {log:q} 2>&1"


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
        PY + " " + SCRIPTS + "/prepare_data.py --mix {output:q} {input:q} > {log:q} 2>&1"
