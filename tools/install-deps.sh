#!/bin/sh
# Install the Debian 12 packages slayer-lua needs to build, test and run its
# demo, skipping those already present.  Run as root (or with sudo available).
set -e
PKGS="build-essential make cmake pkg-config luajit libluajit-5.1-dev libyaml-dev libopenblas-dev zlib1g-dev lua-busted luarocks gnuplot-nox dataset-fashion-mnist"
missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -z "$missing" ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "install-deps: need root to install:$missing" >&2
    exit 1
  fi
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
