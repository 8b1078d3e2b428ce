import numpy as np
import pytest
import torch

from cryoscape.errors import InputError
from cryoscape.imaging.atoms import atoms_to_volume, project_atoms
from cryoscape.imaging.fft import fft3_center, ht3_center, ifft2_center, iht2_center
from cryoscape.imaging.rotations import euler_relion_to_matrix, random_rotations
from cryoscape.imaging.slicing import extract_central_slices, insert_central_slices, project_real_space

D, APIX = 64, 2.0


def _corr(a, b):
    return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64])
def test_insert_is_adjoint_of_extract(dtype):
    g = torch.Generator().manual_seed(0)
    n = 12
    R = random_rotations(7, generator=g)
    vol = torch.randn(n, n, n, generator=g, dtype=dtype)
    slices = torch.randn(7, n, n, generator=g, dtype=dtype)
    lhs = torch.vdot(extract_central_slices(vol, R).reshape(-1), slices.reshape(-1))
    data_acc, weight_acc = insert_central_slices(slices, R, n)
    rhs = torch.vdot(vol.reshape(-1), data_acc.reshape(-1))
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    assert abs(lhs - rhs) <= tol * abs(lhs)
    # weights: every slice pixel within radius n/2 spreads total weight 1 over its 8 neighbours
    # (less where a neighbour falls outside the box)
    inside = (torch.arange(n) - n // 2) ** 2
    n_inside = int(((inside[:, None] + inside[None, :]) <= (n // 2) ** 2).sum())
    assert weight_acc.sum().item() <= 7 * n_inside + 1e-3
    assert weight_acc.sum().item() > 0.95 * 7 * n_inside


def test_slice_of_identity_pose_is_the_kz0_plane():
    g = torch.Generator().manual_seed(1)
    vol = torch.randn(16, 16, 16, generator=g, dtype=torch.float64)
    s = extract_central_slices(vol, torch.eye(3, dtype=torch.float64)[None])[0]
    r2 = (torch.arange(16) - 8) ** 2
    inside = (r2[:, None] + r2[None, :]) <= 64
    np.testing.assert_allclose(s[inside].numpy(), vol[8][inside].numpy())
    assert (s[~inside] == 0).all()
    # a 90° turn about z maps the image x axis onto the volume's y axis: slice(kx, ky) = V(R^T k)
    Rz = torch.tensor([[[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]], dtype=torch.float64)  # R e_y = e_x
    s90 = extract_central_slices(vol, Rz)[0]
    # R^T (kx, ky, 0) = (-ky, kx, 0): slice[y, x] = V[z=0, y=x, x=-y]
    iy, ix = 8 + 3, 8 + 2
    assert s90[iy, ix].item() == pytest.approx(vol[8, 8 + 2, 8 - 3].item())


@pytest.fixture(scope="module")
def adk_volume(adk_atoms):
    coords, elements = adk_atoms
    return atoms_to_volume(coords, elements, D, APIX)


def test_fourier_slice_theorem_end_to_end(adk_atoms, adk_volume):
    coords, elements = adk_atoms
    R = random_rotations(20, generator=torch.Generator().manual_seed(2))
    reference = project_atoms(coords, elements, R, D, APIX)
    vol_ft = fft3_center(adk_volume)
    slices = ifft2_center(extract_central_slices(vol_ft, R)).real
    corr = [_corr(slices[i], reference[i]) for i in range(20)]
    assert min(corr) >= 0.99, corr
    # the transposed rotation (a frequent convention slip) is clearly worse for every pose
    wrong = ifft2_center(extract_central_slices(vol_ft, R.transpose(1, 2))).real
    corr_t = [_corr(wrong[i], reference[i]) for i in range(20)]
    assert np.mean(corr_t) < 0.9 and all(t < c for t, c in zip(corr_t, corr)), corr_t
    # Hartley slices give the same projections
    ht_slices = iht2_center(extract_central_slices(ht3_center(adk_volume), R[:4]))
    np.testing.assert_allclose(ht_slices.numpy(), slices[:4].numpy(), atol=1e-4 * float(slices.abs().max()))


def test_real_space_projection_matches_atoms(adk_atoms, adk_volume):
    coords, elements = adk_atoms
    R = random_rotations(6, generator=torch.Generator().manual_seed(3))
    reference = project_atoms(coords, elements, R, D, APIX)
    proj = project_real_space(adk_volume, R)
    for i in range(6):
        assert _corr(proj[i], reference[i]) > 0.999
        assert proj[i].sum().item() == pytest.approx(reference[i].sum().item(), rel=1e-3)
    wrong = project_real_space(adk_volume, R.transpose(1, 2))
    assert np.mean([_corr(wrong[i], reference[i]) for i in range(6)]) < 0.9


def test_relion_pose_places_atoms_at_R_r():
    # RELION rot = 90°: A = R_z(90°) (passive) maps e_x to -e_y, so an atom at (10, 0, 0) Å
    # appears 10 pixels above the centre row (y = -10), in all three projectors
    R = torch.from_numpy(euler_relion_to_matrix(np.array([[90.0, 0.0, 0.0]])))
    coords = np.array([[10.0, 0.0, 0.0]])
    img = project_atoms(coords, ["C"], R, 32, 1.0, center_A=np.zeros(3))[0]
    y, x = divmod(int(img.argmax()), 32)
    assert (x - 16, y - 16) == (0, -10)
    vol = atoms_to_volume(coords, ["C"], 32, 1.0, center_A=np.zeros(3))
    proj = project_real_space(vol, R)[0]
    assert divmod(int(proj.argmax()), 32) == (y, x)
    slice_proj = ifft2_center(extract_central_slices(fft3_center(vol), R)).real[0]
    assert divmod(int(slice_proj.argmax()), 32) == (y, x)


def test_slicing_validation():
    with pytest.raises(InputError):
        extract_central_slices(torch.zeros(8, 8, 6), torch.eye(3)[None])
    with pytest.raises(InputError):
        extract_central_slices(torch.zeros(8, 8, 8), torch.eye(3))
    with pytest.raises(InputError):
        insert_central_slices(torch.zeros(2, 8, 8), torch.eye(3).expand(3, 3, 3), 8)


def test_agrees_with_torch_fourier_slice(adk_atoms, adk_volume):
    """torch-fourier-slice's ``project_3d_to_2d(volume, M)`` takes matrices M that left-multiply
    xyz column vectors and rotate the *sampling* coordinates, so M = Rᵀ of our pose matrix R.
    It pads the volume 2× before slicing, so it is the more accurate of the two."""
    tfs = pytest.importorskip("torch_fourier_slice")
    coords, elements = adk_atoms
    R = random_rotations(6, generator=torch.Generator().manual_seed(5))
    theirs = tfs.project_3d_to_2d(adk_volume, R.transpose(1, 2).float())
    reference = project_atoms(coords, elements, R, D, APIX)
    ours = ifft2_center(extract_central_slices(fft3_center(adk_volume), R)).real
    for i in range(6):
        assert _corr(theirs[i], reference[i]) > 0.999
        assert _corr(ours[i], theirs[i]) > 0.99
    untransposed = tfs.project_3d_to_2d(adk_volume, R.float())
    assert np.mean([_corr(untransposed[i], reference[i]) for i in range(6)]) < 0.95


def test_half_plane_insertion_completed_by_symmetry_equals_full_insertion():
    from cryoscape.imaging.fft import fft2_center
    from cryoscape.imaging.rotations import random_rotations
    from cryoscape.imaging.slicing import hermitian_complete, insert_central_slices

    D, B = 16, 12
    g = torch.Generator().manual_seed(0)
    slices = fft2_center(torch.randn(B, D, D, generator=g, dtype=torch.float64))  # Hermitian
    slices[:, 0, :] = 0  # the two Nyquist pixels whose mirrors lie outside the grid
    slices[:, :, 0] = 0
    weights = slices.abs() ** 2
    R = random_rotations(B, generator=g)
    full_data, full_weight = insert_central_slices(slices, R, D, weights)
    half_data, half_weight = insert_central_slices(slices, R, D, weights, half_plane=True)
    inner = (slice(1, None),) * 3  # the index-0 planes (k = −D/2) get only unmirrored sums
    assert torch.allclose(hermitian_complete(half_data)[inner], full_data[inner], atol=1e-9)
    assert torch.allclose(hermitian_complete(half_weight)[inner], full_weight[inner], atol=1e-9)
    # without completing, half the data is missing: the check above can fail
    assert not torch.allclose(half_data, full_data, atol=1e-3)


def test_oversampled_extraction_takes_every_other_point_of_the_fine_slice():
    """A transform sampled twice as finely (N = 2D) gives the D×D slice at the same frequencies:
    every other pixel of its own N×N slice, within radius D/2."""
    from cryoscape.imaging.grids import circular_mask
    from cryoscape.imaging.rotations import random_rotations

    D = 16
    fine = torch.randn(2 * D, 2 * D, 2 * D, dtype=torch.complex64)
    R = random_rotations(5, generator=torch.Generator().manual_seed(3))
    coarse = extract_central_slices(fine, R, oversample=2)
    assert coarse.shape == (5, D, D)
    every_other = extract_central_slices(fine, R)[:, 0::2, 0::2] * circular_mask(D, D // 2)
    torch.testing.assert_close(coarse, every_other, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError):
        extract_central_slices(torch.zeros(18, 18, 18), R, oversample=4)
