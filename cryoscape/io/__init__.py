"""File formats: MRC maps and stacks (``mrc``), RELION star (``star``), cryoSPARC cs (``cs``),
cryoDRGN pickles read safely (``legacy_pickle``), atomic models (``atomic_model``), and the
output guard (``paths``). Import the module you need; nothing is imported eagerly here, so that
the command line starts fast.
"""
