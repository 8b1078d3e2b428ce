"""The physics of image formation: transforms, lattices and masks, CTF, rotations and SO(3) grids,
central slices and projections, shifts, and atomic models -> density.

Conventions (shared by every module): images D×D (D even) indexed [y, x], volumes D×D×D indexed
[z, y, x], coordinate vectors (x, y, z), origin at index D//2 on every axis in real and Fourier
space; frequencies k = (index - D//2)/D cycles/pixel. Pose matrices R are RELION's Euler matrices:
an atom at r projects to (R r)_{x,y}, and the Fourier slice samples the volume at Rᵀ(kx, ky, 0).
Shifts are (x, y) pixels; ``translate_ft`` moves content by +shift.
"""

from cryoscape.imaging.atoms import atoms_to_volume, default_bfactor_A2, project_atoms, scattering_coefficients
from cryoscape.imaging.ctf import CTF, electron_wavelength_A, phase_flip
from cryoscape.imaging.fft import (
    downsample_images,
    fft2_center,
    fft3_center,
    fourier_crop_2d,
    fourier_pad_2d,
    ht2_center,
    ht3_center,
    ifft2_center,
    ifft3_center,
    iht2_center,
    iht3_center,
)
from cryoscape.imaging.grids import (
    circular_mask,
    frequency_grid_2d,
    frequency_grid_3d,
    radial_index_2d,
    radial_index_3d,
    soft_circular_mask,
    soft_spherical_mask,
    spherical_mask,
)
from cryoscape.imaging.rotations import (
    axis_angle_to_matrix,
    euler_relion_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_relion,
    matrix_to_quaternion,
    quaternion_to_matrix,
    random_rotations,
)
from cryoscape.imaging.shifts import flip_frequencies, translate_ft, translate_ht
from cryoscape.imaging.slicing import (
    extract_central_slices,
    hermitian_complete,
    insert_central_slices,
    project_real_space,
)
from cryoscape.imaging.so3_grid import (
    hopf_to_quaternion,
    pix2ang,
    shift_grid,
    so3_grid,
    so3_grid_children,
    so3_grid_matrices,
    so3_grid_size,
)

__all__ = [
    "atoms_to_volume",
    "default_bfactor_A2",
    "project_atoms",
    "scattering_coefficients",
    "CTF",
    "electron_wavelength_A",
    "phase_flip",
    "downsample_images",
    "fft2_center",
    "fft3_center",
    "fourier_crop_2d",
    "fourier_pad_2d",
    "ht2_center",
    "ht3_center",
    "ifft2_center",
    "ifft3_center",
    "iht2_center",
    "iht3_center",
    "circular_mask",
    "frequency_grid_2d",
    "frequency_grid_3d",
    "radial_index_2d",
    "radial_index_3d",
    "soft_circular_mask",
    "soft_spherical_mask",
    "spherical_mask",
    "axis_angle_to_matrix",
    "euler_relion_to_matrix",
    "matrix_to_axis_angle",
    "matrix_to_euler_relion",
    "matrix_to_quaternion",
    "quaternion_to_matrix",
    "random_rotations",
    "flip_frequencies",
    "translate_ft",
    "translate_ht",
    "extract_central_slices",
    "hermitian_complete",
    "insert_central_slices",
    "project_real_space",
    "hopf_to_quaternion",
    "pix2ang",
    "shift_grid",
    "so3_grid",
    "so3_grid_children",
    "so3_grid_matrices",
    "so3_grid_size",
]
