"""Target 5: user-written rehearsal checks that each wait on staging (the server adds 100 ms).

``BENCH_SCALE_COUNT`` (default 200) sets how many; the driver warms up with a few.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx

COUNT = int(os.environ.get("BENCH_SCALE_COUNT", "200"))


@pytest.mark.rehearsal(owner="@bench", expect="GET /health answers 200")
@pytest.mark.parametrize("n", range(COUNT))
def test_health_answers(staging: httpx.Client, n: int) -> None:
    assert staging.get("/health").status_code == 200
