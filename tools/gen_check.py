"""Prove gen/ is fresh: generate into a scratch directory and compare."""

import filecmp
import pathlib
import subprocess
import sys
import tempfile


def main(deps: str) -> int:
    protos = sorted(str(p) for p in pathlib.Path("proto").rglob("*.proto"))
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                "-I",
                "proto",
                "-I",
                deps,
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                *protos,
            ],
            check=True,
        )
        fresh = {p.relative_to(out) for p in pathlib.Path(out).rglob("*") if p.is_file()}
        committed = {
            p.relative_to("gen")
            for p in pathlib.Path("gen").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        stale = sorted(
            str(p)
            for p in fresh | committed
            if p not in fresh
            or p not in committed
            or not filecmp.cmp(pathlib.Path(out) / p, pathlib.Path("gen") / p, shallow=False)
        )
    if stale:
        print("gen/ is stale; run `make gen` and commit:", *stale, sep="\n  ", file=sys.stderr)
        return 1
    print(f"gen/ is fresh ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
