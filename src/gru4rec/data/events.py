"""The in-memory form of a session click log: three aligned NumPy columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Events"]


@dataclass(frozen=True)
class Events:
    """Events of a click log, one row per event, all arrays of equal length N.

    Attributes:
        session: (N,) session ids, any dtype (int64 or object strings); used for grouping only.
        item: (N,) item ids exactly as given: int64 when the source had integers, else object
            array of ``str`` (or the source's own dtype for DataFrames/Parquet).
        time: (N,) float64 timestamps (any unit; only the order matters).
    """

    session: np.ndarray
    item: np.ndarray
    time: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])
