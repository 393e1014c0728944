"""Import every module of the installed vae_novelty, from outside the checkout: a module that
reads a file of the checkout when imported fails here. Usage: python import_all.py CHECKOUT
(run in another folder); exit 1 naming each module that fails.
"""

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path

import vae_novelty

# the installed copy may live under the checkout (CI's venv does); the source tree may not serve
source = Path(sys.argv[1]).resolve() / "src"
if source in Path(vae_novelty.__file__).resolve().parents:
    sys.exit(f"vae_novelty imported from the source tree ({vae_novelty.__file__}), not installed")
names = sorted(
    m.name
    for m in pkgutil.walk_packages(vae_novelty.__path__, "vae_novelty.")
    if not m.name.endswith(".__main__")
)
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception:  # noqa: BLE001 - report every failure, then fail
        failed.append(name)
        traceback.print_exc()
print(
    f"{len(names) - len(failed)} of {len(names)} modules of the installed vae_novelty import "
    f"from {vae_novelty.__path__[0]}" + (f"; failed: {', '.join(failed)}" if failed else "")
)
sys.exit(1 if failed else 0)
