"""Running the installed ``dodil`` executable the way a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The console script pip installed next to this interpreter.
DODIL = Path(sys.executable).parent / "dodil"


@dataclass
class Result:
    """What one run of dodil did."""

    args: list[str]
    code: int
    stdout: str
    stderr: str

    def ok(self) -> Result:
        """Assert success (showing stderr when not) and return self."""
        assert self.code == 0, f"dodil {' '.join(self.args)} exited {self.code}: {self.stderr}"
        return self

    def error_line(self) -> str:
        """The single ``error:`` line of a failed run (asserting there is one)."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, f"expected one error line, got: {self.stderr!r}"
        assert "Traceback" not in self.stderr
        return errors[0]


@dataclass
class Dodil:
    """Runs the installed dodil with a private XDG config directory."""

    config_home: Path
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        """The environment of a run: ours minus every DODIL_* and NO_COLOR."""
        base = {
            k: v for k, v in os.environ.items() if not k.startswith("DODIL_") and k != "NO_COLOR"
        }
        return {**base, "XDG_CONFIG_HOME": str(self.config_home), **self.env}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> Result:
        proc = subprocess.run(
            [str(DODIL), *args],
            cwd=self.cwd,
            env=self.environ(),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

    def shell(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run a bash script with dodil on PATH, as a user's terminal would."""
        env = self.environ()
        env["PATH"] = f"{DODIL.parent}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def dodil_for(grpc_target: str, home: Path) -> Dodil:
    """dodil with a config directory of its own under ``home``, pointed at
    the platform serving ``grpc_target``."""
    work = home / "work"
    work.mkdir(parents=True)
    cli = Dodil(config_home=home / "xdg", cwd=work)
    cli("ignite", "config", "set", "api_endpoint", grpc_target).ok()
    return cli


def log_in(cli: Dodil, client_id: str, secret: str) -> None:
    """`dodil login` with client credentials; the secret goes through stdin,
    as a careful script passes it (an argument shows in `ps`)."""
    cli("login", "--client-id", client_id, "--client-secret", "-", input=secret + "\n").ok()
