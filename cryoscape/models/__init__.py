"""Volume models: the contract every family implements (:mod:`cryoscape.models.contract`), the
registry of families (:mod:`cryoscape.models.registry`), and their parts (positional encodings,
residual MLPs, image encoders, per-particle pose corrections).

Layer: imports ``imaging`` (and below) only.
"""

from cryoscape.models.contract import ImageBatch, VolumeModel
from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.mlp import ResidualMLP
from cryoscape.models.neural_field import NeuralField, half_slice_lattice
from cryoscape.models.positional_encoding import PositionalEncoding
from cryoscape.models.registry import ModelSettings, families_of, register, settings_class
from cryoscape.models.vae import HeterogeneousVAE

__all__ = [
    "HeterogeneousVAE",
    "ImageBatch",
    "ImageEncoder",
    "ModelSettings",
    "NeuralField",
    "PositionalEncoding",
    "ResidualMLP",
    "VolumeModel",
    "families_of",
    "half_slice_lattice",
    "register",
    "settings_class",
]
