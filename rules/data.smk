# Upstream files (downloaded, or copied from config data.mirror), validated and normalized, checked for
# train/test overlap, then selected for the run (decontamination policy, subsample).
from dataclasses import asdict


rule fetch_data:
    output:
        paths.raw_data("{relpath}"),
    params:
        files=lambda wc, output: cli(output[0]),
        options=lambda wc: cli(source=asdict(SOURCES[wc.relpath])),
    log:
        paths.log("fetch_data", "{relpath}"),
    shell:
        script("fetch_data", unparams="{DATA_ORIGIN}")


rule normalize_data:
    input:
        lambda wc: paths.raw_data(PLAN.data.datasets[wc.name].source.relpath),
    output:
        paths.full_data("{name}"),
    wildcard_constraints:
        name=alternation(n for n, d in PLAN.data.datasets.items() if not d.via_datasets),
    params:
        files=lambda wc, input, output: cli(input[0], output[0]),
        options=lambda wc: cli(spec=PLAN.data.spec(wc.name)),
    log:
        paths.log("normalize_data", "{name}"),
    shell:
        script("normalize_data")


rule load_dataset:
    # datasets read with the datasets library (config `format: hf`): hub at a pinned commit, or local files
    input:
        local_dataset_files,
    output:
        full=paths.full_data("{name}"),
        source=paths.dataset_source("{name}"),
    wildcard_constraints:
        name=alternation(n for n, d in PLAN.data.datasets.items() if d.via_datasets),
    params:
        files=lambda wc, output: cli(output.full, output.source),
        options=lambda wc: cli(spec=PLAN.data.spec(wc.name), entry=PLAN.data.datasets[wc.name].hf),
    log:
        paths.log("load_dataset", "{name}"),
    shell:
        script("load_dataset")


rule contamination:
    input:
        train=[paths.full_data(n) for n in PLAN.data.train_parts],
        eval=[paths.full_data(n) for n in PLAN.eval_sets],
    output:
        paths.CONTAMINATION,
    params:
        files=cli(paths.CONTAMINATION, train=[f"{n}={paths.full_data(n)}" for n in PLAN.data.train_parts],
                  eval=[f"{n}={paths.full_data(n)}" for n in PLAN.eval_sets]),
        options=cli(**PLAN.data.contamination_options()),
    log:
        paths.log("contamination", "contamination"),
    shell:
        script("contamination")


rule prepare_data:
    input:
        full=lambda wc: paths.full_data(wc.name),
        contamination=contamination_input,
        holdout=holdout_input,
    output:
        paths.prepared_data("{split}", "{name}"),
    wildcard_constraints:
        name=alternation(PLAN.data.datasets),
    params:
        files=lambda wc, input, output: cli(wc.name, wc.split, input.full, output[0],
                                            contamination=input.contamination, holdout=input.holdout),
        options=lambda wc: cli(**PLAN.data.selection_options(wc.name, wc.split)),
    log:
        paths.log("prepare_data", "{split}/{name}"),
    shell:
        script("prepare_data")


rule mix_data:
    # a mixture's training split from its parts'; under tuning also its validation split
    input:
        lambda wc: [paths.prepared_data(wc.split, part) for part in PLAN.data.mixture_parts(wc.mixture)],
    output:
        paths.prepared_data("{split}", "{mixture}"),
    wildcard_constraints:
        split="train|val",
    params:
        files=lambda wc, input, output: cli(output[0], *input),
        options="",
    log:
        paths.log("mix_data", "{split}/{mixture}"),
    shell:
        script("mix_data")
