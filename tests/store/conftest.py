from collections.abc import Iterator
from pathlib import Path

import pytest

from aicf.store.interface import Store
from store.backends import BACKENDS, open_test_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s
