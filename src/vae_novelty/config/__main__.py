"""``python -m vae_novelty.config``: see :mod:`vae_novelty.config.cli`."""

from .cli import main

raise SystemExit(main())
