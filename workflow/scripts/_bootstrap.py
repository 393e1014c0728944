"""Make this repository's package (repo/src) the ``vae_novelty`` a rule's script imports.

Snakemake's script preamble appends the main process's search paths (repo/src among them)
*after* site-packages, so an installed copy of the package (``pip install .``, or an editable
install of another checkout) would win: repo/src is moved to the front instead.
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
while SRC in sys.path:
    sys.path.remove(SRC)
sys.path.insert(0, SRC)
if "vae_novelty" in sys.modules and not str(
    getattr(sys.modules["vae_novelty"], "__file__", "")
).startswith(SRC):
    raise ImportError(
        f"vae_novelty was imported from {sys.modules['vae_novelty'].__file__} "
        f"before {SRC} could be put first"
    )
