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
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v setpriv >/dev/null || need+=(util-linux)
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need+=(libseccomp2)
command -v buildah >/dev/null || need+=(buildah)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v crun >/dev/null || need+=(crun)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v fuse-overlayfs >/dev/null || need+=(fuse-overlayfs)
command -v git >/dev/null || need+=(git)
# A static busybox is the shell of the tests' base image for RUN steps.
command -v busybox >/dev/null || need+=(busybox-static)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "cannot install ${need[*]}: pods would run WITHOUT a sandbox" >&2
fi
