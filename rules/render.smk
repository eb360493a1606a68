# Tables and figures from every score of the run (`render`), or from whatever scores exist (`tables`).

rule render:
    input:
        **RENDER_INPUTS,
    output:
        **render_outputs(),
    params:
        files=lambda wc, input: cli(**{k: input[k] for k in RENDER_INPUTS}),
        options=lambda wc: cli(plan=RENDER_PLAN),  # a function: the plan's text (prompt templates) holds braces
    log:
        paths.log("render", "render"),
    shell:
        script("render")


rule tables:
    # Render every table and figure from the results that exist, into results/interim/ (no training, no evaluation;
    # never over the run's own tables, which a live run may be writing): a look at a run in progress.
    params:
        files=cli(**RENDER_INPUTS),
        options=lambda wc: cli(plan=INTERIM_PLAN),  # a function: the plan's text (prompt templates) holds braces
    log:
        paths.log("tables", "tables"),
    shell:
        script("render")
