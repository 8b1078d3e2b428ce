"""cryoscape: heterogeneous single-particle cryo-EM reconstruction.

Layers (each imports only the ones before it):
``io`` (files) and ``imaging`` (physics) -> ``data`` (particle tables, image datasets) -> ``models``
-> ``inference`` -> ``analysis`` -> ``simulate`` -> ``cli``.
"""

__version__ = "0.2.0"
