# Stage 6: the paper's Figures 1-13 and the report's summary table. Figure rules read only small
# outputs of earlier stages (Theorem 1 tables and image arrays; for Figure 3 the mini-MNIST
# posteriors and model) and never recompute the engine. Each rule's params hold only the
# options that figure uses, so changing one figure option reruns only that figure; the plotting
# modules a figure uses are inputs too, so editing them reruns the figures that use them.

from vae_novelty.figures.naming import sweep_figure_number
from vae_novelty.figures.plan import role_models

# Figures 1-2 (and 14): the shallow and the deep model, first seed.
FIG_MODELS = role_models(CFG, FIG_DIGIT, FIG_SEED)

# Figures 4-13: figure number -> held-out digit, and the models they show (digit by digit,
# then by architecture as in model.architectures).
SWEEP_FIGURES = {sweep_figure_number(d): d for d in sorted(CFG["splits"]["heldout_digits"])}
SWEEP_MODELS = [
    {"arch": a, "split": f"no{d}", "model_id": vcfg.model_id(a, f"no{d}", FIG_SEED)}
    for d in sorted(SWEEP_FIGURES.values())
    for a in SWEEP_ARCHS
]
# figure{n}.png (as a report item) for every sweep figure, then the other formats.
SWEEP_OUTPUTS = []
for _n, _d in sorted(SWEEP_FIGURES.items()):
    # the report sorts by the first label, as text: digits sort as numbers
    _png = report(
        figure_files(f"figure{_n}")[0],
        caption="../report/figure_sweep.rst",
        category="Figures",
        subcategory="4-13: architecture sweep",
        labels={"held-out digit": str(_d), "figure": str(_n)},
    )
    SWEEP_OUTPUTS.append(_png)
SWEEP_OUTPUTS += [f for n in sorted(SWEEP_FIGURES) for f in figure_files(f"figure{n}")[1:]]


rule figure1:
    """Figure 1: reconstructions, weighted averages, top training images, perplexity histograms."""
    input:
        tables=first_seed_files("theorem1", FIG_MODELS, "parquet"),
        arrays=first_seed_files("theorem1", FIG_MODELS, "npz"),
        mnist=res("data/mnist.npz"),
    output:
        report(
            figure_files("figure1")[0],
            caption="../report/figure1.rst",
            category="Figures",
            subcategory="1-3: Theorem 1 on MNIST and mini-MNIST",
            labels={"figure": "1", "shows": "reconstructions, weights, perplexity"},
        ),
        figure_files("figure1")[1:],
        settings=settings_file("figure1", "figures"),
    log:
        res("logs/figures/figure1.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=code_version("figure1.py"),
        dataset=CFG["data"]["name"],
        models=FIG_MODELS,
        digit=FIG_DIGIT,
        test_images=FIG["figure1"]["test_images"],
        hist_bins=FIG["figure1"]["hist_bins"],
        hist_max=FIG["figure1"]["hist_max"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure1.py"


rule figure2:
    """Figure 2: BCE(x, x_hat) against BCE(mu, x_hat) for the shallow and deep VAEs."""
    input:
        tables=first_seed_files("theorem1", FIG_MODELS, "parquet"),
        mnist=res("data/mnist.npz"),
    output:
        report(
            figure_files("figure2")[0],
            caption="../report/figure2.rst",
            category="Figures",
            subcategory="1-3: Theorem 1 on MNIST and mini-MNIST",
            labels={"figure": "2", "shows": "BCE(x, x_hat) vs BCE(mu, x_hat)"},
        ),
        figure_files("figure2")[1:],
        settings=settings_file("figure2", "figures"),
    log:
        res("logs/figures/figure2.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code_version("figure2.py"),
        dataset=CFG["data"]["name"],
        models=FIG_MODELS,
        digit=FIG_DIGIT,
        bce_max=FIG["figure2"]["bce_max"],
        bins=FIG["figure2"]["bins"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure2.py"


rule figure3:
    """Figure 3: the mini-MNIST latent space, max weight map and decoder outputs."""
    input:
        posteriors=res(f"posteriors/mini/mini_s{FIG_SEED}.parquet"),
        model=res(f"models/mini/mini_s{FIG_SEED}.pt"),
        mnist=res("data/mnist.npz"),
    output:
        report(
            figure_files("figure3")[0],
            caption="../report/figure3.rst",
            category="Figures",
            subcategory="1-3: Theorem 1 on MNIST and mini-MNIST",
            labels={"figure": "3", "shows": "mini-MNIST latent space"},
        ),
        figure_files("figure3")[1:],
        settings=settings_file("figure3", "figures"),
    log:
        res("logs/figures/figure3.log"),
    conda:
        "../../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        code=code_version("figure3.py"),
        dataset=CFG["data"]["name"],
        hidden=vcfg.arch_hidden(CFG, "mini"),
        z_dim=vcfg.arch_z_dim(CFG, "mini"),
        model_id=vcfg.model_id("mini", "mini", FIG_SEED),
        grid_size=FIG["figure3"]["grid_size"],
        extent=FIG["figure3"]["extent"],
        cmap=FIG["figure3"]["cmap"],
        samples_per_digit=FIG["figure3"]["samples_per_digit"],
        sample_seed=FIG["figure3"]["sample_seed"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure3.py"


# Figures 4-13: the architecture sweep for every held-out digit (Figure 4: 9; Figure d+5:
# d = 0..8), drawn by one job that reads each model's small Theorem 1 files once; every figure
# is its own report item. The sweep options are shared by all of these figures.
rule figure_sweep:
    """Figures 4-13: weighted average and decoder output of every architecture, per held-out digit."""
    input:
        tables=first_seed_files("theorem1", SWEEP_MODELS, "parquet"),
        arrays=first_seed_files("theorem1", SWEEP_MODELS, "npz"),
        mnist=res("data/mnist.npz"),
    output:
        SWEEP_OUTPUTS,
        settings=settings_file("figure_sweep", "figures"),
    log:
        res("logs/figures/figure_sweep.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        code=code_version("figure_sweep.py"),
        dataset=CFG["data"]["name"],
        # figure number -> held-out digit; the inputs are ordered digit by digit, then by
        # architecture as in model.architectures
        figures=SWEEP_FIGURES,
        n_archs=len(SWEEP_ARCHS),
        model_ids=[m["model_id"] for m in SWEEP_MODELS],
        test_image=FIG["sweep"]["test_image"],
        formats=FIG["formats"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure_sweep.py"


for _number in sorted(SWEEP_FIGURES):
    TARGETS += figure_files(f"figure{_number}")


# Figure 4 as a measurement: per held-out digit, the fraction of reconstructions closer to the
# weighted average than to the input and the median perplexity against decoder size, coloured
# by depth, with the seed intervals of summary_by_config.csv (rule seed_summary) as error bars.
rule figure_quant:
    """Figure 4 quantified: closeness to mu and perplexity against decoder size, with seed intervals."""
    input:
        by_config=res("tables/summary_by_config.csv"),
        # the all-digit panel resamples each seed's mean over the held-out digits
        summary=res("tables/summary.csv"),
    output:
        report(
            figure_files("figure_quant")[0],
            caption="../report/figure_quant.rst",
            category="Figures",
            subcategory="4-13: architecture sweep",
            labels={"held-out digit": "all", "figure": "4 quantified"},
        ),
        figure_files("figure_quant")[1:],
        settings=settings_file("figure_quant", "figures"),
    log:
        res("logs/figures/figure_quant.log"),
    conda:
        "../../envs/figures.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        code=code_version("figure_quant.py"),
        dataset=CFG["data"]["name"],
        digits=sorted(CFG["splits"]["heldout_digits"]),
        bootstrap=SEEDS_CI["bootstrap"],
        level=SEEDS_CI["level"],
        seed=SEEDS_CI["seed"],
        dpi=FIG["dpi"],
    script:
        "../scripts/figure_quant.py"


TARGETS += figure_files("figure_quant")


rule summary_table:
    """The per-model summary table as an HTML page for the report."""
    input:
        res("tables/summary.csv"),
    output:
        report(
            res("report/summary.html"),
            caption="../report/summary.rst",
            category="Tables",
            subcategory="Summary",
            labels={"table": "summary.csv", "rows": "one per trained model"},
        ),
        settings=settings_file("summary_table", "report"),
    log:
        res("logs/figures/summary_table.log"),
    conda:
        "../../envs/figures.yaml"
    params:
        code=code_version("summary_table.py"),
        title="Per-model summary (results/tables/summary.csv)",
        note=(
            "One row per trained model. bce_x_xhat = BCE(x, x_hat), bce_mu_xhat = "
            "BCE(mu, x_hat) over the model's evaluation test images (median, quartiles); "
            "frac_closer_to_mu: fraction with BCE(mu, x_hat) < BCE(x, x_hat); "
            "perplexity of the Theorem 1 weights (1 = nearest-neighbour matching)."
        ),
    script:
        "../scripts/summary_table.py"


TARGETS += figure_files("figure1") + figure_files("figure2") + figure_files("figure3")
TARGETS += [res("report/summary.html")]
