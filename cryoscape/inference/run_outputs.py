"""What a training run writes besides checkpoints: ``log.csv`` and ``loss.png`` (one panel per loss
term), per-particle outputs as NAME.EPOCH.npy plus NAME.npy of the latest epoch, ``run.log``, and
the clean-up of a previous run's files when a run starts afresh (``--force``)."""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cryoscape.io.staging import staged_file

log = logging.getLogger("cryoscape")

_AXIS_LABELS = {
    "mse": "mean squared error, normalized units",
    "kl": "KL divergence per image (nats)",
    "one_minus_frc": "1 − mean Fourier ring correlation",
    "one_minus_correlation": "1 − correlation with the model image",
}
_TIMING = ("seconds", "images_per_s")


def write_log(run: Path, rows: list[dict]) -> None:
    """``log.csv`` (one row per epoch: the loss terms, seconds, images/s) and ``loss.png`` (each term
    but the total against the epoch)."""
    terms = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("epoch", *_TIMING)]
    keys = ["epoch", *terms, *_TIMING]
    lines = [",".join(keys)] + [",".join(_cell(r.get(k, "")) for k in keys) for r in rows]
    with staged_file(run / "log.csv", force=True) as staged:
        staged.write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [t for t in terms if t != "loss" and any(r.get(t) for r in rows)] or ["loss"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), dpi=110, squeeze=False)
    for i, (ax, term) in enumerate(zip(axes[0], panels)):
        shown = [r for r in rows if term in r]
        ax.plot([r["epoch"] for r in shown], [r[term] for r in shown], marker="o", color=f"C{i}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(_AXIS_LABELS.get(term, term))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with staged_file(run / "loss.png", force=True) as staged:
        fig.savefig(staged)
    plt.close(fig)


def _cell(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def save_npy(path: Path, values: np.ndarray) -> None:
    """Write ``values`` to ``path`` atomically (a temporary file, then rename)."""
    with staged_file(path, force=True) as staged:
        np.save(staged, values)


def write_particle_outputs(run: Path, epoch: int, outputs: dict[str, np.ndarray]) -> list[str]:
    """NAME.EPOCH.npy and NAME.npy (the latest) for each per-particle output; the names written."""
    for name, values in outputs.items():
        save_npy(run / f"{name}.{epoch}.npy", values)
        shutil.copyfile(run / f"{name}.{epoch}.npy", run / f"{name}.npy")
    return [f"{name}.{epoch}.npy" for name in outputs]


def clear_previous_run(run: Path, output_names: list[str]) -> list[str]:
    """In a folder that holds a previous run (its config.json), remove the files that a new run would
    otherwise mix with its own: checkpoints, per-particle outputs (NAME.N.npy and NAME.npy, for the
    names of ``output_names`` and every NAME that has a NAME.N.npy there), refined poses, log.csv and
    loss.png; run.log is emptied. Nothing is removed from a folder without a config.json. Returns
    the names removed."""
    if not (run / "config.json").is_file():
        return []
    files = [p.name for p in run.iterdir() if p.is_file()]
    numbered = re.compile(r"(.+)\.\d+\.npy")
    names = set(output_names) | {m.group(1) for f in files if (m := numbered.fullmatch(f))}
    patterns = [r"weights\.\d+\.pt", r"refined_particles\.star", r"log\.csv", r"loss\.png", r"\..+\.part-.+"]
    patterns += [rf"{re.escape(name)}(\.\d+)?\.npy" for name in sorted(names)]
    wanted = re.compile("|".join(f"(?:{p})" for p in patterns))
    removed = sorted(f for f in files if wanted.fullmatch(f))
    for name in removed:
        (run / name).unlink()
    if (run / "run.log").is_file():
        (run / "run.log").write_text("")  # the log handler appends: its next line starts the file
    return removed


@contextlib.contextmanager
def run_log(run: Path | None):
    """Copy the log messages of a training run into RUN/run.log (appended on resume). Yields a
    function that writes earlier records (logged before the run folder was ready) into the file only."""
    if run is None:
        yield lambda records: None
        return
    handler = logging.FileHandler(run / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)

    def write_earlier(records: Sequence[logging.LogRecord]) -> None:
        for record in records:
            handler.handle(record)

    try:
        yield write_earlier
    finally:
        log.removeHandler(handler)
        handler.close()


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def recorded_log():
    """Collect the cryoscape log records emitted inside the block (they are still shown as usual):
    yields the list they are appended to."""
    handler = _Collector()
    records = handler.records
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)
