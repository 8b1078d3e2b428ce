"""The physics functions are batched: one call on B images equals B calls on one image, and the
same call on a GPU equals the CPU's (the cuda cases are marked gpu and run where CUDA exists)."""

import pytest
import torch

from cryoscape.imaging.ctf import CTF
from cryoscape.imaging.fft import fft2_center, fft3_center
from cryoscape.imaging.forward import adjoint_images, centred_hartley, prepare_volume, render_images
from cryoscape.imaging.rotations import random_rotations
from cryoscape.imaging.shifts import translate_ft, translate_ht
from cryoscape.imaging.slicing import extract_central_slices, insert_central_slices

D, B = 24, 5
CUDA = pytest.param(
    "cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
)


def _inputs(device="cpu"):
    g = torch.Generator().manual_seed(7)
    volume = torch.randn(D, D, D, generator=g)
    R = random_rotations(B, generator=g).float()
    shifts = (torch.rand(B, 2, generator=g) - 0.5) * 6
    ctf = CTF.of(torch.linspace(9000, 21000, B), torch.linspace(8800, 20500, B), 30.0, 300.0, 2.7, 0.1)
    images = torch.randn(B, D, D, generator=g)
    return [x.to(device) for x in (volume, R, shifts, images)] + [ctf.images(D, 1.5).to(device)]


def _physics(volume, R, shifts, images, ctf):
    """Each physics function applied to the whole batch (a dict of (B, ...) outputs)."""
    prepared = prepare_volume(volume)
    return {
        "slices": extract_central_slices(fft3_center(volume), R),
        "render": render_images(prepared, R, shifts, ctf),
        "adjoint": adjoint_images(images, shifts, ctf)[0],
        "hartley": centred_hartley(images, shifts),
        "translate_ft": translate_ft(fft2_center(images), shifts),
        "translate_ht": translate_ht(images, shifts),
    }


def test_a_batched_call_equals_a_loop_of_single_calls():
    volume, R, shifts, images, ctf = _inputs()
    batched = _physics(volume, R, shifts, images, ctf)
    for i in range(B):
        one = _physics(volume, R[i : i + 1], shifts[i : i + 1], images[i : i + 1], ctf[i : i + 1])
        for name, value in one.items():
            torch.testing.assert_close(value[0], batched[name][i], rtol=1e-5, atol=1e-4, msg=name)


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_every_device_gives_the_cpu_result(device):
    reference = _physics(*_inputs("cpu"))
    ours = _physics(*_inputs(device))
    for name, value in ours.items():
        assert value.device.type == device
        torch.testing.assert_close(value.cpu(), reference[name], rtol=1e-4, atol=1e-3, msg=name)
    volume, R, shifts, images, ctf = _inputs(device)
    data, weight = insert_central_slices(fft2_center(images), R, D, ctf * ctf)
    cpu_data, cpu_weight = insert_central_slices(fft2_center(images.cpu()), R.cpu(), D, (ctf * ctf).cpu())
    torch.testing.assert_close(data.cpu(), cpu_data, rtol=1e-4, atol=1e-2)
    torch.testing.assert_close(weight.cpu(), cpu_weight, rtol=1e-4, atol=1e-3)
    ctf_here = CTF.of(12000.0, 11000.0, 40.0, device=device).images(D, 1.2)
    torch.testing.assert_close(ctf_here.cpu(), CTF.of(12000.0, 11000.0, 40.0).images(D, 1.2), rtol=0, atol=1e-6)
