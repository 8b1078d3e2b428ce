import math

import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.fft import fft3_center
from cryoscape.imaging.fsc import fsc
from cryoscape.imaging.rotations import random_rotations
from cryoscape.imaging.slicing import extract_central_slices
from cryoscape.models import NeuralField, PositionalEncoding, ResidualMLP


@pytest.mark.parametrize("width, depth, expected", [(256, 3, 296_193), (512, 5, 1_510_913)])
def test_parameter_counts_match_the_thesis(width, depth, expected):
    """Thesis §5.6.4: 3×256 and 5×512 decoders on a 384-wide input (D = 128) with one output."""
    mlp = ResidualMLP(384, width, depth, 1)
    assert sum(p.numel() for p in mlp.parameters()) == expected


def test_conditioned_first_layer_equals_a_layer_on_the_concatenation():
    torch.manual_seed(0)
    mlp = ResidualMLP(376, 256, 3, 1, cond_dim=8)
    assert sum(p.numel() for p in mlp.parameters()) == 296_193  # same network as 384 inputs
    x, c = torch.randn(2, 5, 376), torch.randn(2, 8)
    concat = torch.nn.Linear(384, 256)
    with torch.no_grad():
        concat.weight.copy_(torch.cat([mlp.first.weight, mlp.cond.weight], dim=1))
        concat.bias.copy_(mlp.first.bias)
    expected = mlp.body(concat(torch.cat([x, c[:, None].expand(-1, 5, -1)], dim=-1)))
    assert torch.allclose(mlp(x, c), expected, atol=1e-5)
    assert not torch.allclose(mlp(x, c.flip(0)), expected, atol=1e-3)  # each item keeps its own vector


def test_geometric_encoding_spans_nyquist_to_the_box():
    pe = PositionalEncoding(64, "geom_ft")
    omega = pe.directions[:32, 0]  # x-axis frequencies
    assert pe.out_dim == 3 * 64
    assert omega[0].item() == pytest.approx(64 * math.pi)  # wavelength 2/D (Nyquist)
    assert omega[-1].item() == pytest.approx(2 * math.pi)  # wavelength 1 (the box)
    low = PositionalEncoding(64, "geom_lowf").directions[:32, 0]
    assert torch.allclose(low, omega / (2 * math.pi), rtol=1e-5)  # the ×2π variant for noisy data


def test_gaussian_encoding_is_fixed_by_its_seed():
    a, b, c = (PositionalEncoding(32, "gaussian", seed=s) for s in (1, 1, 2))
    assert torch.equal(a.directions, b.directions) and not torch.equal(a.directions, c.directions)
    assert a.directions.std().item() == pytest.approx(0.5 * 16, rel=0.15)


def test_field_is_hermitian():
    field = NeuralField(16, zdim=2, width=32, depth=1)
    k = torch.rand(3, 50, 3) - 0.5
    z = torch.randn(3, 2)
    assert torch.allclose(field.fourier(-k, z), field.fourier(k, z).conj(), atol=1e-6)


def test_half_slice_rendering_equals_decoding_every_pixel():
    """Decoding half of each slice and mirroring gives what decoding every pixel gives."""
    D = 16
    field = NeuralField(D, width=32, depth=1)
    R = random_rotations(4, generator=torch.Generator().manual_seed(0)).float()
    slices = field.slices(R)
    a = torch.arange(D) - D // 2
    y, x = torch.meshgrid(a, a, indexing="ij")
    k = torch.stack([x, y, torch.zeros_like(x)], -1).reshape(-1, 3).float() / D
    full = field.fourier((k @ R), None)
    hartley = (full.real - full.imag).reshape(4, D, D)
    inside = (x**2 + y**2 <= (D // 2 - 1) ** 2) & ~((x == 0) & (y == 0))
    assert torch.allclose(slices[:, inside], hartley[:, inside], atol=1e-5)
    assert torch.all(slices[:, ~(x**2 + y**2 <= (D // 2 - 1) ** 2)] == 0)


def test_slices_follow_the_imaging_convention():
    """Hartley slices of a field equal the Hartley transform of projections taken by
    cryoscape.imaging (same rotation convention): fit the field to a volume's exact slices."""
    D = 16
    g = torch.Generator().manual_seed(0)
    k = torch.arange(D) - D // 2
    zz, yy, xx = torch.meshgrid(k, k, k, indexing="ij")
    volume = torch.exp(-((xx - 3) ** 2 + yy**2 + (zz + 2) ** 2) / 4.0) + torch.exp(
        -(xx**2 + (yy - 4) ** 2 + zz**2) / 6.0
    )
    volume_ft = fft3_center(volume)
    torch.manual_seed(0)
    field = NeuralField(D, width=64, depth=2, encoding="geom_lowf")
    optimizer = torch.optim.Adam(field.parameters(), lr=3e-3)
    for _ in range(600):
        R = random_rotations(16, generator=g).float()
        target = extract_central_slices(volume_ft, R)
        target_ht = target.real - target.imag
        loss = ((field.slices(R) - target_ht) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learned = field.volume()
    curve = fsc(learned.numpy(), volume.numpy())
    assert curve.fsc[1:4].min() > 0.9 and curve.fsc[4] > 0.8  # the low-resolution shape is learned
    # the same fit seen through transposed rotations does not match: the convention matters
    wrong = NeuralField(D, width=64, depth=2, encoding="geom_lowf")
    wrong.load_state_dict(field.state_dict())
    R = random_rotations(8, generator=g).float()
    good = field.slices(R)
    target = extract_central_slices(volume_ft, R)
    err_good = ((good - (target.real - target.imag)) ** 2).mean()
    err_transposed = ((field.slices(R.transpose(1, 2)) - (target.real - target.imag)) ** 2).mean()
    assert err_transposed > 5 * err_good


def test_bad_shapes_are_refused():
    with pytest.raises(InputError):
        NeuralField(15)
    field = NeuralField(16, zdim=2, width=8, depth=0)
    with pytest.raises(InputError, match="z of shape"):
        field.slices(torch.eye(3)[None])


def test_band_limit_zeroes_slices_and_maps_beyond_it():
    field = NeuralField(32, zdim=0, width=32, depth=1, max_freq=0.5)
    assert field.radius == 8
    a = torch.arange(32) - 16
    y, x = torch.meshgrid(a, a, indexing="ij")
    slices = field.slices(random_rotations(3, generator=torch.Generator().manual_seed(1)))
    assert torch.all(slices[:, x**2 + y**2 > 64] == 0) and torch.all(slices[:, x**2 + y**2 <= 49] != 0)
    ft = fft3_center(field.volume())
    z3, y3, x3 = torch.meshgrid(a, a, a, indexing="ij")
    r2 = x3**2 + y3**2 + z3**2
    assert ft[r2 > 64].abs().max() < 1e-4 * ft[r2 <= 64].abs().max()
    with pytest.raises(InputError, match="fraction of Nyquist"):
        NeuralField(32, max_freq=1.5)
