"""Rule figure_sweep: Figures 4-13, the architecture sweep for every held-out digit."""

import _bootstrap  # noqa: F401

from vae_novelty.figures.build import sweep_from_files
from vae_novelty.figures.common import dataset_name, output_paths, save_figure
from vae_novelty.data import read_fingerprint
from vae_novelty.io import setup_logging
from vae_novelty.recorded import write_settings

sm = snakemake  # noqa: F821
log = setup_logging(sm.log[0])
p = sm.params
n = p.n_archs
data = read_fingerprint(sm.input.mnist)
png_by_number = {
    int(f.rsplit("figure", 1)[1].split(".")[0]): f for f in sm.output if f.endswith(".png")
}
for k, (number, digit) in enumerate(sorted(p.figures.items(), key=lambda kv: kv[1])):
    tables, arrays = sm.input.tables[k * n : (k + 1) * n], sm.input.arrays[k * n : (k + 1) * n]
    with dataset_name(p.dataset):
        fig = sweep_from_files(
            tables,
            arrays,
            digit,
            p.test_image,
            model_ids=p.model_ids[k * n : (k + 1) * n],
            data=data,
        )
    paths = output_paths(png_by_number[int(number)][: -len(".png")], p.formats)
    save_figure(fig, paths, p.dpi)
    log.info(
        "Figure %s: held-out digit %d, test image position %d, %d architectures -> %s",
        number,
        digit,
        p.test_image,
        len(tables),
        paths,
    )
write_settings(sm.output.settings, sm.rule, sm.params)
