"""The base images a Dockerfile's FROM lines name."""

from __future__ import annotations

import pytest

from ignite_server.images.dockerfile import base_images

CASES = [
    ("FROM scratch\nCOPY x /x\n", {}, []),
    ("FROM node:20 AS build\nRUN x\nFROM build\nFROM nginx\n", {}, ["node:20", "nginx"]),
    ("from --platform=linux/amd64 alpine:3 as a\nFROM a\n", {}, ["alpine:3"]),
    ("ARG BASE=debian:12\nFROM ${BASE}\n", {}, ["debian:12"]),
    ("ARG BASE=debian:12\nFROM $BASE\n", {"BASE": "ubuntu:24.04"}, ["ubuntu:24.04"]),
    ("ARG TAG\nFROM python:${TAG:-3.11}-slim\n", {}, ["python:3.11-slim"]),
    ("# syntax=docker/dockerfile:1\nFROM \\\n  busybox\n", {}, ["busybox"]),
    ("# escape=`\nFROM `\n  busybox\n", {}, ["busybox"]),
    ("FROM a\nFROM a\nARG LATE=x\nFROM b:$LATE\n", {}, ["a", "b:"]),
]


@pytest.mark.parametrize(("text", "args", "expected"), CASES)
def test_from_lines(text: str, args: dict[str, str], expected: list[str]) -> None:
    assert base_images(text, args) == expected
