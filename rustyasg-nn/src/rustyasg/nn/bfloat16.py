"""bfloat16 data in a numpy world: numpy has no bfloat16, so its bits are widened to float32 (exactly).

Example:
    >>> import numpy as np
    >>> widen_bfloat16(np.array([0x3F80, 0xC000, 0x7F80], np.uint16)).tolist()
    [1.0, -2.0, inf]
"""

from __future__ import annotations

import numpy as np


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """float32 values of bfloat16 numbers given as their uint16 bit patterns (any shape)."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)
