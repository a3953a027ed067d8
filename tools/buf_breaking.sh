#!/usr/bin/env bash
# buf breaking of proto/ against an earlier commit (BUF_AGAINST, default the
# previous commit). The earlier tree is exported with git and given the same
# google/api protos, since buf cannot fetch them from the BSR here.
set -euo pipefail
deps=$1
against=${BUF_AGAINST:-HEAD~1}
if ! git rev-parse --verify -q "$against^{commit}" >/dev/null; then
  echo "buf breaking: no commit $against to compare with; nothing to check"
  exit 0
fi
if [ -z "$(git ls-tree -r --name-only "$against" -- proto)" ]; then
  echo "buf breaking: $against has no protos yet; nothing to check"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$against" proto buf.yaml | tar -x -C "$tmp"
mkdir -p "$tmp/build"
cp -r "$deps" "$tmp/build/proto-deps"
bin=$(dirname "$0")/../.venv/bin
"$bin/buf" breaking --against "$tmp"
echo "buf breaking: no breaking change against $against"
