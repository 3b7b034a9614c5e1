#!/usr/bin/env bash
# Installs the Debian packages the build needs. As root it installs them; otherwise it
# prints the exact command to run. Safe to run again: apt skips what is present.
set -euo pipefail
# chromium: the browser test drives it headless through playwright-core (which cannot
# download browsers here).
# clang, libclang-rt-14-dev: the sanitizer builds and libFuzzer (its runtime and
# FuzzedDataProvider.h are in libclang-rt-14-dev, only a recommendation of clang's).
PACKAGES=(emscripten binaryen cmake make g++ googletest libgtest-dev chromium clang libclang-rt-14-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "attnkit needs these Debian packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
