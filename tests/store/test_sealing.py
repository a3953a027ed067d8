"""Env values sealed at rest (store/sealing.py)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from ignite_server.domain.errors import FailedPrecondition
from ignite_server.store.sealing import SEALED_KEY, EnvSealer


def test_sealed_env_reveals_nothing_and_opens_again():
    sealer = EnvSealer(Fernet.generate_key())
    stored = sealer.seal({"API_KEY": "canary-secret-0123456789abcdef0123456789abcdef"})
    assert list(stored) == [SEALED_KEY] and "canary" not in json.dumps(stored)
    assert sealer.is_sealed(json.dumps(stored))
    assert sealer.open(json.dumps(stored)) == {
        "API_KEY": "canary-secret-0123456789abcdef0123456789abcdef"
    }


def test_plain_env_from_before_sealing_is_still_read():
    sealer = EnvSealer(Fernet.generate_key())
    assert sealer.open('{"A": "1"}') == {"A": "1"}
    assert not sealer.is_sealed('{"A": "1"}')


def test_env_sealed_under_another_key_is_a_clear_error():
    stored = EnvSealer(Fernet.generate_key()).seal({"A": "1"})
    with pytest.raises(FailedPrecondition) as err:
        EnvSealer(Fernet.generate_key()).open(stored)
    assert err.value.reason == "ENV_UNREADABLE"
