"""The settings of a mixture of neural fields (:mod:`cryoscape.models.mixture`): options, their checks,
and the checks against the data set (enough particles per class, a warm-up long enough)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryoscape.errors import InputError
from cryoscape.models.neural_field import check_field_settings
from cryoscape.models.registry import ModelSettings, register

if TYPE_CHECKING:
    from cryoscape.models.mixture import MixtureOfFields

log = logging.getLogger("cryoscape")

MIN_PARTICLES_PER_CLASS = 10
# images the warm-up should see (anneal_epochs × particles): below it the heads may not have
# specialized when the exact posterior starts, and one head can take every image (module docstring)
WARMUP_IMAGES = 3200


@register
@dataclass(frozen=True)
class MixtureSettings(ModelSettings):
    """A mixture of ``classes`` neural fields (each ``width`` × ``depth``, positional ``encoding``, band
    limit ``max_freq``) with a latent of ``zdim`` numbers per class (0: discrete classes only; encoder
    ``enc_width`` × ``enc_depth``, KL weight ``beta``), a junk class (``junk``), annealing from
    ``start_temperature`` over ``anneal_epochs``, pruning below ``min_fraction`` or ``junk_evidence``,
    merging maps whose FSC averaged to half the band limit exceeds ``merge_fsc``
    (:mod:`cryoscape.models.mixture_classes`), and screening classes below the low-resolution posterior
    ``screen`` (:mod:`cryoscape.models.mixture_screening`)."""

    kind = "mixture"
    command = "train-mix"
    option = "mixture"
    default_lr = 1e-3
    summary = "a mixture of neural fields with a junk class (Hydra-like)"
    classes: int = 3
    zdim: int = 0  # a field here, a property (0) in the base
    width: int = 256
    depth: int = 3
    encoding: str = "gaussian"
    max_freq: float = 1.0
    enc_width: int = 256
    enc_depth: int = 3
    beta: float | None = None
    junk: bool = True
    start_temperature: float = 0.01
    anneal_epochs: int = 2
    noise_momentum: float = 0.95
    min_fraction: float = 0.02
    merge_fsc: float = 0.9
    junk_evidence: float = 0.1
    screen: float = 1e-3

    def check(self) -> None:
        if self.classes < 1:
            raise InputError(f"the number of classes (-k) must be at least 1, got {self.classes}")
        if self.zdim < 0:
            raise InputError(f"the latent dimension (--zdim) must be 0 or more, got {self.zdim}")
        check_field_settings(self.width, self.depth, self.encoding, self.max_freq)
        if self.zdim and (self.enc_width < 1 or self.enc_depth < 1):
            raise InputError(
                f"the encoder needs a width and depth of at least 1, got {self.enc_width}, {self.enc_depth}"
            )
        if not 0 < self.start_temperature <= 1 or self.anneal_epochs < 0:
            raise InputError("the start temperature must be in (0, 1] and the annealing epochs at least 0")
        if not 0 <= self.min_fraction < 1 or not 0 < self.merge_fsc <= 1 or not 0 <= self.junk_evidence < 1:
            raise InputError("the pruning fraction and junk evidence must be in [0, 1), the merging FSC in (0, 1]")
        if not 0 <= self.screen < 1:
            raise InputError(f"the screening posterior (--screen) must be in [0, 1), got {self.screen}")
        if not 0 <= self.noise_momentum < 1:
            raise InputError(f"the noise momentum must be in [0, 1), got {self.noise_momentum}")

    def check_particles(self, n: int) -> None:
        if self.classes * MIN_PARTICLES_PER_CLASS > n:
            raise InputError(
                f"-k {self.classes} needs at least {self.classes * MIN_PARTICLES_PER_CLASS} particles "
                f"({MIN_PARTICLES_PER_CLASS} per class); the input has {n}"
            )
        if self.classes > 1 and self.anneal_epochs * n < WARMUP_IMAGES:
            log.warning(
                "the warm-up sees %d images (%d epochs of %d particles), fewer than %d: classes may collapse into "
                "one; give --anneal-epochs %d or more",
                self.anneal_epochs * n,
                self.anneal_epochs,
                n,
                WARMUP_IMAGES,
                -(-WARMUP_IMAGES // n),
            )

    def build(self, D: int, seed: int) -> MixtureOfFields:
        from cryoscape.models.mixture import MixtureOfFields  # noqa: PLC0415 (the model imports these settings)

        return MixtureOfFields(D, self, seed)
