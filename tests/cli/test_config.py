"""The config file, its keys and the stored token."""

from __future__ import annotations

import stat

import pytest
import yaml

from dodil_cli import credentials
from dodil_cli.config import Config, config_path
from dodil_cli.errors import UsageError


@pytest.fixture(autouse=True)
def private_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("DODIL_API_ENDPOINT", "DODIL_ORGANIZATION", "DODIL_OUTPUT", "DODIL_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_lives_in_the_xdg_config_directory(tmp_path):
    assert config_path() == tmp_path / "dodil" / "config.yaml"


def test_relative_xdg_value_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".config" / "dodil" / "config.yaml"


def test_set_save_load_round_trip():
    config = Config.load()
    config.set("api_endpoint", "rpc.dev.dodil.io:443")
    config.set("organization", "acme-corp")
    config.save()
    assert yaml.safe_load(config_path().read_text()) == {
        "api_endpoint": "rpc.dev.dodil.io:443",
        "organization": "acme-corp",
    }
    assert Config.load().effective("organization") == ("acme-corp", "file")


def test_environment_overrides_file_and_default(monkeypatch):
    config = Config.load()
    assert config.effective("output") == ("table", "default")
    config.set("output", "yaml")
    assert config.effective("output") == ("yaml", "file")
    monkeypatch.setenv("DODIL_OUTPUT", "json")
    assert config.effective("output") == ("json", "env")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("output", "xml"),
        ("organization", "Acme"),
        ("api_endpoint", "host:port"),
        ("plaintext", "maybe"),
    ],
)
def test_invalid_values_are_rejected(name, value):
    with pytest.raises(UsageError):
        Config.load().set(name, value)


def test_unknown_key_is_rejected():
    with pytest.raises(UsageError, match="unknown config key"):
        Config.load().set("colour", "blue")


def test_booleans_are_normalised():
    assert Config.load().set("plaintext", "Yes") == "true"


def test_stored_token_is_private_and_loaded():
    path = credentials.store_token("secret-token-value", "rpc.example.com:443")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = credentials.load_credentials()
    assert loaded is not None
    assert loaded.token == "secret-token-value"
    assert loaded.endpoint == "rpc.example.com:443"
    assert "secret-token-value" not in str(loaded.describe())


def test_token_from_environment_wins(monkeypatch):
    credentials.store_token("stored", "localhost:50051")
    monkeypatch.setenv("DODIL_TOKEN", "from-env")
    loaded = credentials.load_credentials()
    assert loaded is not None
    assert loaded.token == "from-env"


def test_forget_removes_the_token():
    credentials.store_token("x", "localhost:50051")
    assert credentials.forget()
    assert credentials.load_credentials() is None
    assert not credentials.forget()


def test_jwt_claims_are_described_without_the_token():
    # header.payload.signature with payload {"sub": "svc-1", "exp": 1}
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiAic3ZjLTEiLCAiZXhwIjogMX0.c2ln"
    described = credentials.Credentials("token", token, "env").describe()
    assert described["sub"] == "svc-1"
    assert described["exp"] == 1
    assert token not in str(described)


def test_client_credentials_round_trip_and_renewal():
    fresh = credentials.Credentials(
        credentials.KIND_CLIENT, "", "", client_id="ci@acme", client_secret="s3cret"
    )
    assert fresh.needs_renewal()
    issued = fresh.renewed("jwt-token", expires_in_seconds=3600)
    assert not issued.needs_renewal()
    # Within the renewal margin of its expiry the token is renewed first.
    assert issued.needs_renewal(now_ms=issued.expires_at_ms - 30_000)
    path = credentials.store(issued)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = credentials.load_credentials()
    assert loaded is not None
    assert (loaded.kind, loaded.client_id, loaded.client_secret, loaded.token) == (
        credentials.KIND_CLIENT,
        "ci@acme",
        "s3cret",
        "jwt-token",
    )
    assert "s3cret" not in str(loaded.describe())
    assert "jwt-token" not in str(loaded.describe())


def test_plain_tokens_are_never_renewed():
    assert not credentials.Credentials("token", "t", "env").needs_renewal()
