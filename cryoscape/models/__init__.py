"""Volume representations: neural fields in the Fourier domain (positional encodings, residual MLPs).

Layer: imports ``imaging`` (and below) only.
"""

from cryoscape.models.mlp import ResidualMLP
from cryoscape.models.neural_field import NeuralField, half_slice_lattice
from cryoscape.models.positional_encoding import PositionalEncoding

__all__ = ["NeuralField", "PositionalEncoding", "ResidualMLP", "half_slice_lattice"]
