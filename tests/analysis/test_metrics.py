import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cryoscape.analysis import adjusted_rand_index, auto_mask, confusion_matrix, fsc, pose_error


def _blob_map(D=32, seed=0):
    rng = np.random.default_rng(seed)
    k = np.arange(D) - D // 2
    z, y, x = np.meshgrid(k, k, k, indexing="ij")
    vol = np.zeros((D, D, D))
    for c in rng.uniform(-6, 6, size=(8, 3)):
        vol += np.exp(-((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) / 8.0)
    return vol


def test_fsc_identical_maps_is_one_and_resolution_is_nyquist():
    vol = _blob_map() + np.random.default_rng(1).normal(size=(32, 32, 32))
    curve = fsc(vol, vol, apix=2.0)
    assert np.allclose(curve.fsc, 1.0)
    assert curve.resolution_A(0.143) == pytest.approx(4.0)
    assert curve.auc() == pytest.approx(1.0)


def test_fsc_of_independent_noise_is_near_zero():
    rng = np.random.default_rng(0)
    curve = fsc(rng.normal(size=(32,) * 3), rng.normal(size=(32,) * 3))
    assert np.all(np.abs(curve.fsc[3:]) < 0.15)


def test_fsc_matches_direct_shell_sum():
    """Independent reference: shells and correlation computed with scipy.ndimage on numpy's FFT."""
    from scipy import ndimage

    rng = np.random.default_rng(2)
    a, b = _blob_map(seed=3) + 0.3 * rng.normal(size=(32,) * 3), _blob_map(seed=3) + 0.3 * rng.normal(size=(32,) * 3)
    fa, fb = np.fft.fftshift(np.fft.fftn(a)), np.fft.fftshift(np.fft.fftn(b))
    k = np.arange(32) - 16
    r = np.round(np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)).astype(int)
    idx = np.arange(17)
    num = ndimage.sum_labels(np.real(fa * np.conj(fb)), r, idx)
    den = np.sqrt(ndimage.sum_labels(np.abs(fa) ** 2, r, idx) * ndimage.sum_labels(np.abs(fb) ** 2, r, idx))
    assert np.allclose(fsc(a, b).fsc, num / den, atol=1e-10)


def test_fsc_resolution_of_lowpassed_map_tracks_the_cutoff():
    """A map and its copy low-passed at shell 8 (of D=32, apix 1.5): FSC drops at 1.5*32/8 = 6 Å."""
    D, apix = 32, 1.5
    vol = np.random.default_rng(4).normal(size=(D,) * 3)
    f = np.fft.fftshift(np.fft.fftn(vol))
    k = np.arange(D) - D // 2
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    low = np.real(np.fft.ifftn(np.fft.ifftshift(np.where(r < 8.5, f, 0))))
    res = fsc(vol, low, apix=apix).resolution_A(0.5)
    assert 5.5 < res < 6.2


def test_auto_mask_covers_the_molecule_and_not_the_corners():
    vol = _blob_map()
    mask = auto_mask(vol)
    assert mask.max() == 1.0 and mask[0, 0, 0] == 0.0
    assert np.sum(mask * vol) > 0.95 * np.sum(vol[vol > 0.05 * vol.max()])


def _random_rot(n, seed):
    return Rotation.random(n, random_state=seed).as_matrix()


def test_pose_error_removes_global_rotation_and_hand():
    true = _random_rot(200, 0)
    g = _random_rot(1, 1)[0]
    est = true @ g.T
    err = pose_error(true, est)
    assert not err.mirrored and err.rotation_deg.max() < 1e-5
    mirror = np.diag([1.0, 1.0, -1.0])
    err_m = pose_error(true, mirror @ true @ mirror @ g.T)
    assert err_m.mirrored and err_m.rotation_deg.max() < 1e-5
    # without considering the hand the mirrored set cannot be aligned
    assert pose_error(true, mirror @ true @ mirror @ g.T, consider_mirror=False).rotation_deg.mean() > 20


def test_pose_error_measures_known_perturbation():
    true = _random_rot(500, 2)
    delta = Rotation.from_rotvec(np.tile([0.0, 0.0, np.radians(5.0)], (500, 1))).as_matrix()
    err = pose_error(true, delta @ true, consider_mirror=False)
    # a fixed in-plane perturbation is not a global rotation of the frame: error stays ~5 degrees
    assert np.median(err.rotation_deg) == pytest.approx(5.0, abs=0.5)
    # Frobenius² of a 5° rotation is 4(1 - cos 5°)
    assert np.median(err.rotation_frobenius2) == pytest.approx(4 * (1 - np.cos(np.radians(5))), rel=0.2)


def test_clustering_agreement():
    truth = np.repeat([0, 1, 2], 50)
    assert adjusted_rand_index(truth, (truth + 1) % 3) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert abs(adjusted_rand_index(truth, rng.integers(0, 3, 150))) < 0.1
    m, rows, cols = confusion_matrix(truth, np.where(truth == 2, 1, truth))
    assert list(rows) == [0, 1, 2] and list(cols) == [0, 1]
    assert m.tolist() == [[50, 0], [0, 50], [0, 50]]


def test_per_image_fsc_uses_each_images_ground_truth():
    from cryoscape.analysis import per_image_fsc

    gt = np.stack([_blob_map(seed=10), _blob_map(seed=11)])
    labels = np.array([0, 1, 1, 0])
    right = per_image_fsc(lambda i: gt[labels[i]], gt, labels, apix=2.0)
    wrong = per_image_fsc(lambda i: gt[1 - labels[i]], gt, labels, apix=2.0)
    assert np.allclose(right["auc"], 1.0) and np.allclose(right["resolution_A"], 4.0)
    assert np.all(wrong["auc"] < 0.5) and np.all(wrong["resolution_A"] > 8.0)
