#!/usr/bin/env bash
# Sets up the Python reference: Debian's python3-torch (1.13.1, CPU), python3-numpy, python3-h5py,
# python3-pil and python3-pytest through /usr/bin/python3, plus a venv (reference/.venv, with
# --system-site-packages) holding the pinned pip packages of reference/requirements.txt.
# Idempotent: installs only what is missing. Needs root (or sudo) when a Debian package is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

pkgs=(python3 python3-venv python3-pip python3-torch python3-numpy python3-h5py python3-pil python3-pytest)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "reference/setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  t0=$SECONDS
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  echo "reference/setup: apt took $((SECONDS - t0)) s"
fi

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "reference/setup: creating $venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "reference/setup: pip install -r requirements.txt"
  t0=$SECONDS
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  echo "$want" > "$stamp"
  echo "reference/setup: pip took $((SECONDS - t0)) s"
fi
"$venv/bin/python" -c "import torch, numpy, h5py, PIL, safetensors, tokenizers; print('reference/setup: torch', torch.__version__, '| numpy', numpy.__version__, '| h5py', h5py.__version__, '| Pillow', PIL.__version__, '| safetensors', safetensors.__version__, '| tokenizers', tokenizers.__version__)"
