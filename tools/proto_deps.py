"""Copy the google/api protos our .proto files import out of the installed
googleapis-common-protos package, so buf can resolve them without the BSR."""

import pathlib
import shutil
import sys

import google.api
import google.api.annotations_pb2

DEPS = ("annotations.proto", "http.proto")


def main(out: str) -> None:
    src = pathlib.Path(next(iter(google.api.__path__)))
    dst = pathlib.Path(out) / "google" / "api"
    dst.mkdir(parents=True, exist_ok=True)
    for name in DEPS:
        shutil.copyfile(src / name, dst / name)


if __name__ == "__main__":
    main(sys.argv[1])
