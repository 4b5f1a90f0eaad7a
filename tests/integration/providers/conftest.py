"""Local provider servers and a real httpx client; nothing leaves 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.fake_providers import TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, FakeMetaServer, FakeTwilioServer
from wabacast_local.sandbox import SandboxServer


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def fake_meta() -> Iterator[FakeMetaServer]:
    with FakeMetaServer() as server:
        yield server


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioServer]:
    with FakeTwilioServer(TEST_ACCOUNT_SID, TEST_AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server
