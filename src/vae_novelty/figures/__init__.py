"""The paper's figures as plotting functions: arrays and tables in, a matplotlib Figure out.

One module per figure (``figure1``, ``figure2``, ``figure3``, ``sweep`` for Figures 4-13), the
selection of what is shown (``selection``), readers of the Theorem 1 outputs (``loaders``) and
shared drawing helpers (``common``). Nothing here recomputes the Theorem 1 engine, except
Figure 3's latent grid, which calls the engine's ``max_weight_grid``.
"""
