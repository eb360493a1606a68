# Tuning (config `tuning:`): each trial scored on its training set's validation split, then one selection per
# (model, adapter, training set) from those scores alone; the chosen setting's fine-tune (rules/finetune.smk) reads
# the selection. No test set's prediction or score is an input here (tests/pipeline/test_tuning_run.py checks the
# DAG).


rule validate:
    input:
        model=model_dir,
        adapter=paths.adapter_dir("{model}", "{trial}", "{train}"),
        data=paths.prepared_data("val", "{train}"),
    output:
        record=paths.validation("{model}", "{trial}", "{train}"),
        predictions=paths.validation_predictions("{model}", "{trial}", "{train}"),
    params:
        files=lambda wc, input, output: cli(model=input.model, adapter_dir=input.adapter, data=input.data,
                                            record=output.record, predictions=output.predictions),
        options=lambda wc: cli(labels=PLAN.labels(wc.model, wc.trial, wc.train),
                               settings=PLAN.tuning.validation_settings(wc.train),
                               training=PLAN.training.train_config(wc.trial), **PLAN.model_options(wc.model)),
    threads: THREADS
    resources:
        **model_job(lambda wc: ESTIMATES.validate(wc.model, wc.train), PLAN.gpus("evaluate")),
    log:
        paths.log("validate", "{model}/{trial}/{train}"),
    shell:
        script("validate", EVALUATE_PY, threads=True)


rule select_setting:
    input:
        records=lambda wc: [paths.validation(wc.model, t.name, wc.train) for t in PLAN.tuning.trials_of(wc.adapter)],
        predictions=lambda wc: [paths.validation_predictions(wc.model, t.name, wc.train)
                                for t in PLAN.tuning.trials_of(wc.adapter)],
        adapters=lambda wc: [paths.adapter_dir(wc.model, t.name, wc.train) for t in PLAN.tuning.trials_of(wc.adapter)],
    output:
        paths.selection("{model}", "{adapter}", "{train}"),
    params:
        files=lambda wc, input, output: cli(output[0], records=input.records,
                                                       predictions=input.predictions, adapters=input.adapters),
        options=lambda wc: cli(adapter=wc.adapter, metric=PLAN.tuning.settings["validation"]["metric"],
                               trials={t.name: t.values for t in PLAN.tuning.trials_of(wc.adapter)}),
    log:
        paths.log("select_setting", "{model}/{adapter}/{train}"),
    shell:
        script("select_setting")
