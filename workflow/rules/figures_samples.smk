# Figures 14 and 15: the generated samples of the samples stage (issue 19). Included by the
# Snakefile after figures.smk and after the rules that write results/samples/ and the summary
# columns sample_* (it uses FIG_MODELS from figures.smk, first_seed_files and figure_files
# from common.smk).


rule figure14:
    """Figure 14: generated samples of the models of Figures 1-2, with mu(z) and the nearest training image."""
    input:
        tables=first_seed_files("samples", FIG_MODELS, "parquet"),
        arrays=first_seed_files("samples", FIG_MODELS, "npz"),
        mnist=res("data/mnist.npz"),
    output:
        report(
            figure_files("figure14")[0],
            caption="../report/figure14.rst",
            category="Figures",
            subcategory="14-15: generated samples",
            labels={"figure": "14", "shows": "samples, mu(z), nearest training image"},
        ),
        figure_files("figure14")[1:],
        settings=settings_file("figure14", "figures"),
    log:
        res("logs/figures/figure14.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=1500,
        runtime=10,
    params:
        # figure14 wraps its text with quant.wrap_text
        code=code_version("figure14.py"),
        dataset=CFG["data"]["name"],
        models=FIG_MODELS,
        digit=FIG_DIGIT,
        n_samples=FIG["figure14"]["n_samples"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure14.py"


# As figure_quant for reconstructions: per held-out digit, statistics of the generated samples
# against decoder size, coloured by depth, with the seed intervals of summary_by_config.csv.
rule figure15:
    """Figure 15: copy fraction, held-out digit fraction and C_T of samples against decoder size, with seed intervals."""
    input:
        by_config=res("tables/summary_by_config.csv"),
        # the all-digit panel resamples each seed's mean over the held-out digits
        summary=res("tables/summary.csv"),
    output:
        report(
            figure_files("figure15")[0],
            caption="../report/figure15.rst",
            category="Figures",
            subcategory="14-15: generated samples",
            labels={"figure": "15", "shows": "copies, held-out digit, C_T by depth"},
        ),
        figure_files("figure15")[1:],
        settings=settings_file("figure15", "figures"),
    log:
        res("logs/figures/figure15.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code_version("figure15.py"),
        dataset=CFG["data"]["name"],
        digits=sorted(CFG["splits"]["heldout_digits"]),
        bootstrap=SEEDS_CI["bootstrap"],
        level=SEEDS_CI["level"],
        seed=SEEDS_CI["seed"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure15.py"


TARGETS += figure_files("figure14") + figure_files("figure15")
