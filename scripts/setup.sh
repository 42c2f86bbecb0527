#!/usr/bin/env bash
# Installs what dsocr needs to build and test (Debian 12 / Ubuntu 24.04): compilers, CMake, the
# OpenCL ICD loader and headers, CLBlast, HDF5, fmt, libpng, libjpeg-turbo, nlohmann-json, PCRE2,
# poppler-cpp, GoogleTest, and two OpenCL drivers for the CPU: PoCL and Mesa's rusticl.
# Installs only what is missing; needs root (or sudo) when something is.
set -euo pipefail

pkgs=(cmake g++ make pkg-config
      ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers libclblast-dev
      libhdf5-dev libfmt-dev libpng-dev libjpeg62-turbo-dev nlohmann-json3-dev libpcre2-dev
      libpoppler-cpp-dev libgtest-dev
      pocl-opencl-icd mesa-opencl-icd)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
