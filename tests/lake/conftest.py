"""A real S3-protocol server on loopback (moto in server mode) for the lake's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from polyfarm.lake.storage import Lake, S3Options, open_lake


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_lake(s3_endpoint: str) -> Lake:
    """A new bucket on the loopback server, the lake at a prefix in it."""
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    options = S3Options(endpoint=s3_endpoint, access_key="test", secret_key="test")
    admin = pafs.S3FileSystem(
        access_key="test",
        secret_key="test",
        region="us-east-1",
        endpoint_override=s3_endpoint.removeprefix("http://"),
        scheme="http",
        allow_bucket_creation=True,
    )
    admin.create_dir(bucket)
    return open_lake(f"s3://{bucket}/farm", options)


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    if request.param == "local":
        return open_lake(str(tmp_path / "lake"))
    s3: Lake = request.getfixturevalue("s3_lake")
    return s3
