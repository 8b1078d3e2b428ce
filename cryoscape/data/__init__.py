"""Particles in memory: the particle table (poses, CTF, optics, metadata) and image sources.

Layer: imports ``io`` and ``imaging`` only.
"""

from cryoscape.data.batching import iterate_batches
from cryoscape.data.images import ImageSource, iterate_chunks, load_image_table
from cryoscape.data.particle_io import export_cryodrgn, load_particles, load_stacks, save_cs, save_star
from cryoscape.data.particles import CTFParams, ParticleTable

__all__ = [
    "CTFParams",
    "ImageSource",
    "ParticleTable",
    "export_cryodrgn",
    "iterate_batches",
    "iterate_chunks",
    "load_image_table",
    "load_particles",
    "load_stacks",
    "save_cs",
    "save_star",
]
