#!/usr/bin/env bash
# deps.sh -- install the Debian 12 packages this project builds and tests
# with, if any is missing. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  gcc make cmake pkg-config git
  libuv1-dev libjansson-dev libcmocka-dev libsodium-dev libsqlite3-dev
  libedit-dev libssl-dev openssl
  redis-server libhiredis-dev
  tmux valgrind iproute2 nftables
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  echo "deps: not root; using sudo" >&2
  sudo=(sudo)
else
  echo "deps: not root and no sudo: as root, run: apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
