#!/usr/bin/env bash
# What the pod and build sandbox needs from Debian: bubblewrap (namespaces,
# mounts), libseccomp (the system-call filter) and util-linux's setpriv
# (dropping to the sandbox's uid). Installed when missing; a host where they
# cannot be installed runs pods unsandboxed, and `make run` says so.
# Image apps add the image tools: buildah (Dockerfile builds), skopeo
# (copying images between registries), distribution's registry (the
# embedded registry), git (builds from a repository), and the container
# runtimes and tools those use (crun, runc, umoci, uidmap, fuse-overlayfs).
set -euo pipefail
packages=(bubblewrap util-linux libseccomp2 buildah skopeo umoci crun runc docker-registry
          uidmap fuse-overlayfs git
          socat           # git:// clones through a build's egress proxy
          busybox-static)  # a static busybox is the shell of the tests' base image for RUN steps
"$(dirname "$0")/apt_install.sh" "${packages[@]}" || echo "pods would run WITHOUT a sandbox" >&2
