"""Volume representations: neural fields in the Fourier domain (positional encodings, residual MLPs).

Layer: imports ``imaging`` (and below) only.
"""

from cryoscape.models.mlp import ResidualMLP
from cryoscape.models.encoder import ImageEncoder
from cryoscape.models.neural_field import NeuralField, half_slice_lattice
from cryoscape.models.positional_encoding import PositionalEncoding
from cryoscape.models.vae import HeterogeneousVAE

__all__ = ["HeterogeneousVAE", "ImageEncoder", "NeuralField", "PositionalEncoding", "ResidualMLP", "half_slice_lattice"]
