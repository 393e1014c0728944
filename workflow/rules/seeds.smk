# Stage 5b: the per-model summary over seeds: one row per configuration (architecture, training
# split) with the mean of every statistic over training.seeds and a bootstrap percentile
# interval for it (seeds_ci; src/vae_novelty/seeds.py). One seed: the intervals are NaN.


rule seed_summary:
    """Per configuration: the mean of every statistic over seeds, with a bootstrap interval."""
    input:
        summary=res("tables/summary.csv"),
    output:
        table=res("tables/summary_by_config.csv"),
        page=report(
            res("report/summary_by_config.html"),
            caption="../report/seed_summary.rst",
            category="Tables",
            subcategory="Summary",
            labels={
                "table": "summary_by_config.csv",
                "rows": "one per architecture and training split",
            },
        ),
        settings=settings_file("seed_summary", "tables"),
    log:
        res("logs/tables/seed_summary.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code_version("seed_summary.py"),
        bootstrap=SEEDS_CI["bootstrap"],
        level=SEEDS_CI["level"],
        seed=SEEDS_CI["seed"],
        title="Summary over seeds (results/tables/summary_by_config.csv)",
        note=(
            f"One row per architecture and training split; n_seeds models each "
            f"(training.seeds). Every statistic of summary.csv as: mean over seeds "
            f"[{SEEDS_CI['level']:.0%} bootstrap percentile interval of that mean, "
            f"{SEEDS_CI['bootstrap']} resamples of the seeds]. With one seed the interval is "
            f"undefined (NaN in the CSV) and only the mean is shown."
        ),
    script:
        "../scripts/seed_summary.py"


TARGETS += [res("tables/summary_by_config.csv"), res("report/summary_by_config.html")]
