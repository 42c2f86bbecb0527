#!/usr/bin/env bash
# Sets up the Python reference: the distribution's numpy, h5py, Pillow and pytest through
# /usr/bin/python3, plus a venv (reference/.venv, with --system-site-packages) holding the pinned
# pip packages of reference/requirements.txt.
#   Debian/Ubuntu (apt-get; what CI runs): python3-torch (Debian 12: 1.13.1, CPU) comes from
#     Debian too. The committed goldens were written with that torch (dsocr_ref/goldens.py).
#   Fedora and derivatives such as Fedora Asahi Remix (dnf; not yet run on a Fedora machine):
#     torch is installed from PyPI into the venv, because Fedora's python3-torch is not built for
#     aarch64 (Apple silicon) in every release. It is the larger download (on x86_64 the PyPI
#     wheel brings NVIDIA's CUDA libraries along), and a torch other than Debian's 1.13.1 may not
#     reproduce the committed goldens bit for bit (the reference suite's regeneration check).
# Idempotent: installs only what is missing. Needs root (or sudo) when a system package is missing.
# DSOCR_OS_RELEASE and DSOCR_SETUP_DRY_RUN=1 work as in scripts/setup.sh (a dry run prints the
# family, the packages and the commands, and changes nothing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
os_release=${DSOCR_OS_RELEASE:-/etc/os-release}
dry_run=${DSOCR_SETUP_DRY_RUN:-0}

os_field() {
  [ -r "$os_release" ] || return 0
  sed -n "s/^$1=//p" "$os_release" | head -n1 | tr -d "\"'" | tr '[:upper:]' '[:lower:]'
}
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
    echo "reference/setup: unknown distribution and neither apt-get nor dnf found; install python3" \
      "(with venv and pip), numpy, h5py, Pillow, pytest and torch, then rerun" >&2
    exit 1
  fi
fi
run() {
  if [ "$dry_run" = 1 ]; then
    echo "reference/setup: would run: $*"
  else
    "$@"
  fi
}

if [ "$family" = debian ]; then
  pkgs=(python3 python3-venv python3-pip python3-torch python3-numpy python3-h5py python3-pil python3-pytest python3-matplotlib)
else
  pkgs=(python3 python3-pip python3-numpy python3-h5py python3-pillow python3-pytest python3-matplotlib)  # venv: part of python3
fi
[ "$dry_run" = 1 ] && echo "reference/setup: family $family ($os_release), packages: ${pkgs[*]}"
missing=()
for p in "${pkgs[@]}"; do
  if [ "$family" = debian ]; then
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  else
    rpm -q --whatprovides "$p" >/dev/null 2>&1 || missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "reference/setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  t0=$SECONDS
  if [ "$family" = debian ]; then
    export DEBIAN_FRONTEND=noninteractive
    run $SUDO apt-get update -qq
    run $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    echo "reference/setup: apt took $((SECONDS - t0)) s"
  else
    run $SUDO dnf install -y --setopt=install_weak_deps=False "${missing[@]}"
    echo "reference/setup: dnf took $((SECONDS - t0)) s"
  fi
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "reference/setup: creating $venv"
  run /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "reference/setup: pip install -r requirements.txt"
  t0=$SECONDS
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  [ "$dry_run" = 1 ] || echo "$want" > "$stamp"
  echo "reference/setup: pip took $((SECONDS - t0)) s"
fi
if [ "$family" = fedora ] && { [ "$dry_run" = 1 ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; }; then
  echo "reference/setup: pip install torch (CPU use only; from PyPI, a large download)"
  t0=$SECONDS
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check torch
  echo "reference/setup: pip took $((SECONDS - t0)) s"
fi
[ "$dry_run" = 1 ] && exit 0
"$venv/bin/python" -c "import torch, numpy, h5py, PIL, safetensors, tokenizers; print('reference/setup: torch', torch.__version__, '| numpy', numpy.__version__, '| h5py', h5py.__version__, '| Pillow', PIL.__version__, '| safetensors', safetensors.__version__, '| tokenizers', tokenizers.__version__)"
