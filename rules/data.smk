# Upstream files (downloaded, or copied from config data.mirror), validated and normalized, checked for
# train/test overlap, then selected for the run (decontamination policy, subsample).
from dataclasses import asdict


rule fetch_data:
    output:
        paths.raw_data("{relpath}"),
    wildcard_constraints:
        relpath=alternation(SOURCES),
    params:
        files=lambda wc, output: cli(output[0]),
        options=lambda wc: cli(source=asdict(SOURCES[wc.relpath])),
    log:
        paths.log("fetch_data", "{relpath}"),
    shell:
        script("fetch_data", unparams="{DATA_ORIGIN}")


rule normalize_data:
    input:
        lambda wc: paths.raw_data(PLAN.datasets[wc.name].source.relpath),
    output:
        paths.full_data("{name}"),
    wildcard_constraints:
        name=alternation(n for n, d in PLAN.datasets.items() if not d.via_datasets),
    params:
        files=lambda wc, input, output: cli("normalize", input[0], output[0]),
        options=lambda wc: cli(spec={k: getattr(PLAN.datasets[wc.name], k)
                                     for k in ("name", "loader", "split", "answer_type", "suite")}),
    log:
        paths.log("normalize_data", "{name}"),
    shell:
        script("prepare_data")


def local_dataset_files(wildcards):
    """A local dataset's file, or every file of its save_to_disk folder: a changed file re-runs what uses it."""
    entry = PLAN.datasets[wildcards.name].hf
    if "path" not in entry:
        return []  # a hub dataset: its pinned revision, a param, is what changes
    path = Path(entry["path"])
    return sorted(str(f) for f in path.rglob("*") if f.is_file()) if path.is_dir() else [str(path)]


rule load_dataset:
    # datasets read with the datasets library (config `format: hf`): hub at a pinned commit, or local files
    input:
        local_dataset_files,
    output:
        full=paths.full_data("{name}"),
        source=paths.dataset_source("{name}"),
    wildcard_constraints:
        name=alternation(n for n, d in PLAN.datasets.items() if d.via_datasets),
    params:
        files=lambda wc, output: cli("load", output.full, output.source),
        options=lambda wc: cli(spec={k: getattr(PLAN.datasets[wc.name], k)
                                     for k in ("name", "loader", "split", "answer_type", "suite")},
                               entry=PLAN.datasets[wc.name].hf),
    log:
        paths.log("load_dataset", "{name}"),
    shell:
        script("prepare_data")


rule contamination:
    input:
        train=[paths.full_data(n) for n in PLAN.train_parts],
        eval=[paths.full_data(n) for n in PLAN.eval_sets],
    output:
        paths.CONTAMINATION,
    params:
        files=cli("contamination", paths.CONTAMINATION, train=[f"{n}={paths.full_data(n)}" for n in PLAN.train_parts],
                  eval=[f"{n}={paths.full_data(n)}" for n in PLAN.eval_sets]),
        options=cli(**PLAN.contamination_options()),
    log:
        paths.log("contamination", "contamination"),
    shell:
        script("prepare_data")


def contamination_input(wildcards):
    return [paths.CONTAMINATION] if PLAN.waits_for_contamination(wildcards.split) else []


def holdout_input(wildcards):
    """Under tuning, a training set's validation split: its fine-tunes train without those items."""
    return [paths.prepared_data("val", wildcards.name)] if PLAN.holds_out_validation(wildcards.name, wildcards.split) \
        else []


rule prepare_data:
    input:
        full=lambda wc: paths.full_data(wc.name),
        contamination=contamination_input,
        holdout=holdout_input,
    output:
        paths.prepared_data("{split}", "{name}"),
    wildcard_constraints:
        split="train|eval|val",
        name=alternation(PLAN.datasets),
    params:
        files=lambda wc, input, output: cli("select", wc.name, wc.split, input.full, output[0],
                                            contamination=input.contamination, holdout=input.holdout),
        options=lambda wc: cli(**PLAN.selection_options(wc.name, wc.split)),
    log:
        paths.log("prepare_data", "{split}/{name}"),
    shell:
        script("prepare_data")


rule mix_data:
    input:
        lambda wc: [paths.prepared_data("train", part) for part in PLAN.mixture_parts(wc.mixture)],
    output:
        paths.prepared_data("train", "{mixture}"),
    wildcard_constraints:
        mixture=alternation(PLAN.mixtures),
    params:
        files=lambda wc, input, output: cli("mix", output[0], *input),
        options="",
    log:
        paths.log("mix_data", "{mixture}"),
    shell:
        script("prepare_data")


rule mix_validation:
    # tuning: a mixture's validation split, from its parts'
    input:
        lambda wc: [paths.prepared_data("val", part) for part in PLAN.mixture_parts(wc.mixture)],
    output:
        paths.prepared_data("val", "{mixture}"),
    wildcard_constraints:
        mixture=alternation(PLAN.mixtures),
    params:
        files=lambda wc, input, output: cli("mix", output[0], *input),
        options="",
    log:
        paths.log("mix_validation", "{mixture}"),
    shell:
        script("prepare_data")
