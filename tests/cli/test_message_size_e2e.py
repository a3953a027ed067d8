"""dodil sending a message over the server's limits: one error line with the
size and the limit, exit code 8, never grpc's raw text."""

from __future__ import annotations

from ignite_server.api.grpc_server import CORE_RECEIVE_BYTES
from tests.support import SEED_HANDLER, deploy_python, stub_for

MIB = 1024 * 1024


def test_oversize_invoke_is_one_line_with_the_limit(ignite, platform, org):
    deploy_python(stub_for(platform.grpc_target), org, "greet", SEED_HANDLER)
    (ignite.cwd / "big.bin").write_bytes(b"\x01" * (40 * MIB))
    result = ignite("ignite", "invoke", "greet", "-f", "big.bin", "--raw")
    assert result.code == 8, result.stderr
    assert result.error_line() == (
        "error: RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE): "
        "the request is 40 MiB; the server accepts messages up to 34 MiB"
    )
    assert "larger than max" not in result.stderr


def test_past_the_hard_limit_grpc_text_becomes_one_line(ignite, platform, org):
    deploy_python(stub_for(platform.grpc_target), org, "greet", SEED_HANDLER)
    (ignite.cwd / "huge.bin").write_bytes(b"\x01" * (CORE_RECEIVE_BYTES + MIB))
    result = ignite("ignite", "invoke", "greet", "-f", "huge.bin", "--raw", timeout=300)
    assert result.code == 8, result.stderr
    line = result.error_line()
    assert line == (
        "error: RESOURCE_EXHAUSTED (MESSAGE_TOO_LARGE): "
        f"a message of {CORE_RECEIVE_BYTES // MIB + 1} MiB is over the limit of "
        f"{CORE_RECEIVE_BYTES // MIB} MiB"
    )
    assert "larger than max" not in result.stderr
    # The raw text is kept for --verbose.
    verbose = ignite(
        "ignite", "invoke", "greet", "-f", "huge.bin", "--raw", "--verbose", timeout=300
    )
    assert "Received message larger than max" in verbose.stderr
