# Upstream files (downloaded, or copied from config data.mirror), validated and normalized, checked for
# train/test overlap, then selected for the run (decontamination policy, subsample).


rule fetch_data:
    output:
        "resources/data/{relpath}",
    wildcard_constraints:
        relpath=alternation(s.relpath for s in SOURCES.values()),
    params:
        files=lambda wc, output: cli(output[0]),
        options=lambda wc: cli(source=asdict(next(s for s in SOURCES.values() if s.relpath == wc.relpath))),
    log:
        "logs/fetch_data/{relpath}.log",
    run:
        # The mirror and base URL are read here rather than declared as params: where the bytes come from does
        # not change them (sha256-verified), so switching mirror <-> download must not re-run anything.
        origin = cli(mirror=config["data"]["mirror"], base_url=config["data"]["base_url"])
        command = f"{PY} {SCRIPTS}/fetch_data.py {params.files} {params.options} {origin} > {shlex.quote(log[0])} 2>&1"
        shell(command.replace("{", "{{").replace("}", "}}"))  # complete: nothing left for shell() to fill in


rule normalize_data:
    input:
        lambda wc: raw_path(wc.name),
    output:
        "results/data/full/{name}.jsonl",
    wildcard_constraints:
        name=alternation(DATASETS),
    params:
        files=lambda wc, input, output: cli("normalize", input[0], output[0]),
        options=lambda wc: cli(spec={k: getattr(DATASETS[wc.name], k)
                                     for k in ("name", "loader", "split", "answer_type", "suite")}),
    log:
        "logs/normalize_data/{name}.log",
    shell:
        script("prepare_data.py")


rule contamination:
    input:
        train=[full_path(n) for n in TRAIN_PARTS],
        eval=[full_path(n) for n in config["eval_sets"]],
    output:
        CONTAMINATION,
    params:
        files=cli("contamination", CONTAMINATION, train=[f"{n}={full_path(n)}" for n in TRAIN_PARTS],
                  eval=[f"{n}={full_path(n)}" for n in config["eval_sets"]]),
        options=cli(ngram=config["contamination"]["ngram"], threshold=config["contamination"]["threshold"],
                    level=config["contamination"]["level"], policy=config["decontaminate"]),
    log:
        "logs/contamination/contamination.log",
    shell:
        script("prepare_data.py")


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
        files=lambda wc, input, output: cli("select", wc.name, wc.split, input.full, output[0],
                                            contamination=input.contamination),
        options=lambda wc: cli(limit=cfg.data_limit(config, wc.name, wc.split), seed=config["data"]["seed"],
                               policy=config["decontaminate"], level=config["contamination"]["level"]),
    log:
        "logs/prepare_data/{split}/{name}.log",
    shell:
        script("prepare_data.py")


rule mix_data:
    input:
        lambda wc: [f"results/data/train/{part}.jsonl" for part in config["mixtures"][wc.mixture]],
    output:
        "results/data/train/{mixture}.jsonl",
    wildcard_constraints:
        mixture=alternation(config["mixtures"]),
    params:
        files=lambda wc, input, output: cli("mix", output[0], *input),
        options="",
    log:
        "logs/mix_data/{mixture}.log",
    shell:
        script("prepare_data.py")
