#!/usr/bin/env bash
# One-step install on a fresh Debian/Ubuntu machine (CPU only):
#   1. Mesa EGL/OSMesa so MuJoCo renders without a GPU or a display,
#   2. the CPU build of torch FIRST, so nothing later can pull a multi-GB CUDA build,
#   3. this project (editable) with its test extras,
# all at the versions of constraints.txt.
# Installs into the active Python environment (make and activate a venv first if you want one).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libosmesa6 git >/dev/null
else
  echo "setup: no apt-get here; install Mesa EGL/OSMesa (libegl1, libosmesa6) yourself" >&2
fi

PY="${PYTHON:-python3}"
# constraints.txt: the exact versions the published numbers were measured with (see its header)
"$PY" -m pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0"
"$PY" -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
"$PY" - <<'PYCHECK'
import torch, transformers, snakemake, dvc, metaworld, mujoco
assert not torch.version.cuda, "a CUDA torch was installed; reinstall with: pip install torch==2.13.0"
print(f"setup ok: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"mujoco {mujoco.__version__}")
PYCHECK
