from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.s3 import MotoServer, start_moto_server


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server for the whole run. A server that cannot start fails the tests, never skips
    them: the S3 path is what production runs."""
    try:
        server = start_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log")
    except RuntimeError as error:
        pytest.fail(f"S3 tests need moto_server: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
