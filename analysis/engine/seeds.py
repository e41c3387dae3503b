"""Independent, reproducible random streams, one per purpose, all from the one configured seed."""

from __future__ import annotations

import numpy as np


class Seeds:
    """Streams named by purpose ("sampler", "derive", ...): adding a purpose never changes another's."""

    def __init__(self, seed: int) -> None:
        self._seed = int(seed)

    def _sequence(self, purpose: str) -> np.random.SeedSequence:
        return np.random.SeedSequence([self._seed, *purpose.encode()])

    def integer(self, purpose: str) -> int:
        return int(self._sequence(purpose).generate_state(1)[0])

    def rng(self, purpose: str) -> np.random.Generator:
        return np.random.default_rng(self._sequence(purpose))
