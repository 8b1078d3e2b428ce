"""Agreement between particle assignments and ground-truth labels."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics import confusion_matrix as _confusion_matrix

from cryoscape.errors import InputError


def _check(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(labels_true).ravel(), np.asarray(labels_pred).ravel()
    if len(a) != len(b):
        raise InputError(f"label arrays differ in length: {len(a)} and {len(b)}")
    return a, b


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """Adjusted Rand index (1 = identical partitions, ~0 = chance), invariant to label names."""
    return float(adjusted_rand_score(*_check(labels_true, labels_pred)))


def confusion_matrix(labels_true, labels_pred) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(matrix, true label values, predicted label values); matrix[i, j] counts true i predicted j."""
    a, b = _check(labels_true, labels_pred)
    rows, cols = np.unique(a), np.unique(b)
    every = np.union1d(rows, cols)
    full = _confusion_matrix(a, b, labels=every)
    return full[np.isin(every, rows)][:, np.isin(every, cols)], rows, cols
