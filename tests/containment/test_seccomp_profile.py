"""The OCI form of the system-call policy (image pods) says what the
compiled filter says."""

from __future__ import annotations

import errno

from ignite_server.containment import seccomp


def test_oci_profile_is_the_same_policy() -> None:
    profile = seccomp.oci_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == errno.EPERM
    assert len(profile["architectures"]) == 1
    allowed = {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }
    assert allowed == set(seccomp.ALLOWED)
    conditional = {
        name for rule in profile["syscalls"] if rule.get("args") for name in rule["names"]
    }
    assert conditional == {"clone", *seccomp.MODE_ARGUMENT, *seccomp.CREATE_ARGUMENTS}
    assert not (allowed | conditional) & set(seccomp.REFUSED)
    (clone3,) = [rule for rule in profile["syscalls"] if rule["names"] == ["clone3"]]
    assert clone3["errnoRet"] == errno.ENOSYS
    for rule in profile["syscalls"]:
        for arg in rule.get("args", ()):
            assert arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["valueTwo"] == 0
