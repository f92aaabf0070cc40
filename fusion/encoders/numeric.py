"""Standardised numeric columns with a missing-value mask (prices, weights, ratings...)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch

from .base import Encoder, EncoderError, register


def as_matrix(values: Sequence) -> np.ndarray:
    """``float64 [N, C]``: a list of numbers (C = 1) or of rows; None / NaN / inf -> NaN."""
    rows = list(values)
    if rows and all(isinstance(r, list | tuple | np.ndarray) for r in rows):
        width = {len(r) for r in rows}
        if len(width) != 1:
            raise EncoderError(f"numeric: rows have different lengths {sorted(width)}")
        cells = [[np.nan if v is None else v for v in r] for r in rows]
    else:
        cells = [[np.nan if v is None else v] for v in rows]
    try:
        matrix = np.asarray(cells, dtype=np.float64).reshape(len(rows), -1)
    except (TypeError, ValueError) as err:
        raise EncoderError(f"numeric: values must be numbers or None ({err})") from None
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


@register("numeric")
class NumericEncoder(Encoder):
    """Numbers -> ``float32 [N, 2C]``: C z-scores, then C presence indicators.

    ``fit(values)`` learns each column's mean and standard deviation from its non-missing
    values (a constant column gets std 1). ``encode(values)`` returns ``(x - mean) / std``
    where present and **0 where missing**, followed by one 0/1 indicator per column, so a
    model can tell "missing" from "average": a missing value is masked, never imputed as
    a meaningful number. ``mask(values)`` is True for rows with at least one number; rows
    where it is False must be ignored downstream (fusion modules mask them out).
    ``values`` is a list of float-or-None (one column) or a list of rows (C columns);
    None, NaN and +-inf count as missing. Pass ``mean``/``std`` to reuse fitted statistics.
    """

    modality = "numeric"

    def __init__(
        self,
        device: str | torch.device | None = "auto",
        batch_size: int = 64,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__(device=device, batch_size=batch_size)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        if mean is not None or std is not None:
            if mean is None or std is None or len(mean) != len(std):
                raise EncoderError("numeric: give both mean and std, of the same length")
            self.mean = np.asarray(mean, dtype=np.float64)
            self.std = np.where(np.asarray(std, dtype=np.float64) > 0, std, 1.0)

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self.mean is None:
            raise EncoderError("numeric: call fit(values) first (dim is 2 x number of columns)")
        return 2 * len(self.mean)

    @property
    def version(self) -> str:  # type: ignore[override]
        if self.mean is None:
            return "1-unfitted"
        stats = np.concatenate([self.mean, self.std]).tobytes()
        return "1-" + hashlib.sha256(stats).hexdigest()[:12]

    def fit(self, values: Sequence) -> NumericEncoder:
        matrix = as_matrix(values)
        present = ~np.isnan(matrix)
        counts = present.sum(axis=0)
        filled = np.where(present, matrix, 0.0)
        mean = filled.sum(axis=0) / np.maximum(counts, 1)
        var = (np.where(present, matrix - mean, 0.0) ** 2).sum(axis=0) / np.maximum(counts, 1)
        std = np.sqrt(var)
        self.mean = mean
        self.std = np.where(std > 0, std, 1.0)
        return self

    def encode(self, batch: Sequence) -> torch.Tensor:
        matrix = as_matrix(batch)
        if self.mean is None:
            raise EncoderError("numeric: call fit(values) before encode")
        if matrix.shape[1] != len(self.mean) and len(matrix):
            raise EncoderError(
                f"numeric: fitted on {len(self.mean)} columns, got {matrix.shape[1]}"
            )
        present = ~np.isnan(matrix)
        z = np.where(present, (matrix - self.mean) / self.std, 0.0)
        out = np.concatenate([z, present.astype(np.float64)], axis=1)
        return torch.from_numpy(out.reshape(len(matrix), self.dim)).float()

    def mask(self, values: Sequence) -> torch.Tensor:
        """``bool [N]``: True where the row has at least one number."""
        matrix = as_matrix(values)
        return torch.from_numpy((~np.isnan(matrix)).any(axis=1))
