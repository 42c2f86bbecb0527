#!/usr/bin/env bash
# Installs what dsocr needs to build and test: compilers, CMake, the OpenCL ICD loader and
# headers (C and C++), CLBlast, HDF5, fmt, libpng, libjpeg-turbo, nlohmann-json, PCRE2,
# poppler-cpp, cpp-httplib (dsocr serve), GoogleTest, and two OpenCL drivers for the CPU: PoCL and
# Mesa's rusticl.
# Installs only what is missing; needs root (or sudo) when something is.
#
# Two package families, chosen from /etc/os-release (ID, then ID_LIKE):
#   debian, ubuntu (and derivatives)      apt-get   tried: Debian 12 (what CI runs)
#   fedora (and derivatives, e.g. Fedora  dnf       package names checked against Fedora's
#   Asahi Remix, ID=fedora-asahi-remix)             package database; not yet run on Fedora
# Without a usable os-release the family follows the package manager present (apt-get, dnf).
#
# Environment (for tests and for looking before installing):
#   DSOCR_OS_RELEASE=FILE    read FILE instead of /etc/os-release
#   DSOCR_SETUP_DRY_RUN=1    print the family, the package list and the install commands; run none
set -euo pipefail

os_release=${DSOCR_OS_RELEASE:-/etc/os-release}
dry_run=${DSOCR_SETUP_DRY_RUN:-0}

# os_field NAME: the value of NAME= in the os-release file, quotes removed, lower case.
os_field() {
  [ -r "$os_release" ] || return 0
  sed -n "s/^$1=//p" "$os_release" | head -n1 | tr -d "\"'" | tr '[:upper:]' '[:lower:]'
}

# The package family: debian or fedora.
family=""
for id in $(os_field ID) $(os_field ID_LIKE); do
  case "$id" in
    debian | ubuntu) family=debian; break ;;
    fedora) family=fedora; break ;;
  esac
done
if [ -z "$family" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    family=debian
  elif command -v dnf >/dev/null 2>&1; then
    family=fedora
  else
    echo "setup: unknown distribution ($os_release: ID=$(os_field ID), ID_LIKE=$(os_field ID_LIKE)) and" \
      "neither apt-get nor dnf found. Install by hand: a C++17 compiler, CMake >= 3.22, pkg-config," \
      "the OpenCL ICD loader with C and C++ headers (CL/opencl.hpp), CLBlast, HDF5, fmt, libpng," \
      "libjpeg-turbo, nlohmann-json, PCRE2, poppler-cpp, cpp-httplib, GoogleTest, and an OpenCL driver (PoCL)." >&2
    exit 1
  fi
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# run CMD...: runs it, or prints it in a dry run.
run() {
  if [ "$dry_run" = 1 ]; then
    echo "setup: would run: $*"
  else
    "$@"
  fi
}

if [ "$family" = debian ]; then
  pkgs=(cmake g++ make pkg-config
        ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers libclblast-dev
        libhdf5-dev libfmt-dev libpng-dev libjpeg62-turbo-dev nlohmann-json3-dev libpcre2-dev
        libpoppler-cpp-dev libgtest-dev libcpp-httplib-dev
        fonts-dejavu-core fonts-liberation fonts-freefont-ttf wamerican
        pocl-opencl-icd mesa-opencl-icd)
else
  # Fedora: opencl-headers carries the C and the C++ headers (CL/opencl.hpp); mesa-libOpenCL is
  # rusticl; json-devel is nlohmann-json. The fonts and words (the word list) are for the
  # synthetic text images of the reference's training data (reference/dsocr_ref/synth.py).
  pkgs=(cmake gcc-c++ make pkgconf-pkg-config
        ocl-icd-devel opencl-headers clblast-devel
        hdf5-devel fmt-devel libpng-devel libjpeg-turbo-devel json-devel pcre2-devel
        poppler-cpp-devel gtest-devel cpp-httplib-devel
        dejavu-sans-fonts dejavu-serif-fonts dejavu-sans-mono-fonts liberation-sans-fonts
        liberation-serif-fonts liberation-mono-fonts gnu-free-sans-fonts gnu-free-serif-fonts
        gnu-free-mono-fonts words
        pocl mesa-libOpenCL)
fi
[ "$dry_run" = 1 ] && echo "setup: family $family ($os_release), packages: ${pkgs[*]}"

missing=()
for p in "${pkgs[@]}"; do
  if [ "$family" = debian ]; then
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  else
    rpm -q --whatprovides "$p" >/dev/null 2>&1 || missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
if [ "$family" = debian ]; then
  export DEBIAN_FRONTEND=noninteractive
  run $SUDO apt-get update -qq
  run $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  run $SUDO dnf install -y --setopt=install_weak_deps=False "${missing[@]}"
fi
