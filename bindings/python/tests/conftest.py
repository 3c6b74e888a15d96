"""Shared configurations and fixtures for the shopauth binding tests."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

import shopauth

SECRET = "5ec7e7" + "0123456789abcdef" * 3 + "9a8b7c6d5e"  # 64 hex digits

KEY_CONFIG: Dict[str, Any] = {
    "secret": SECRET,
    "platforms": {"mykey": {"kind": "key", "credential": "token"}},
}

OAUTH_CONFIG: Dict[str, Any] = {
    "secret": SECRET,
    "platforms": {
        "mykey": {"kind": "key", "credential": "token"},
        "myshop": {
            "kind": "oauth2",
            "authorize_url": "https://as.example/authorize",
            "token_url": "https://as.example/token",
        },
    },
    "apps": {
        "myshop": {
            "app_key": "cid",
            "app_secret": "app-secret-5e",
            "redirect_uri": "https://host.example/cb",
        }
    },
}

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z in epoch milliseconds


def assert_envelope(reply: Any) -> None:
    """Every reply is the seed envelope: an int code and a text message."""
    assert isinstance(reply, dict), reply
    assert type(reply["code"]) is int, reply
    assert isinstance(reply["message"], str), reply
    assert "data" in reply, reply
    if reply["code"] != 200:
        assert isinstance(reply.get("kind"), str), reply


@pytest.fixture
def key_engine() -> Iterator[shopauth.Engine]:
    with shopauth.Engine(KEY_CONFIG) as engine:
        yield engine


@pytest.fixture
def oauth_engine() -> Iterator[shopauth.Engine]:
    with shopauth.Engine(OAUTH_CONFIG) as engine:
        yield engine
