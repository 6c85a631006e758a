#!/usr/bin/env bash
# Creates .venv and installs tfllm with its test tools into it. Idempotent: it
# reinstalls only when pyproject.toml changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3 || true)}
if [ -z "$PYTHON" ]; then
  echo "error: tfllm needs Python 3.11 (python3.11 or python3 on PATH)." >&2
  exit 2
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "error: tfllm needs Python 3.11 (the TensorFlow 2.21 line); $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 2
fi

# Real public text for the default corpus (fortune quotes by category, WordNet
# glosses, the Jargon File): Debian ships it, nothing is downloaded at run time.
DEBIAN_PACKAGES="fortunes wordnet-base jargon-text"
missing=$(for p in $DEBIAN_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "Installing the default corpus packages: $missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "warning: Debian packages missing ($missing); the default corpus needs them:" \
         "sudo apt-get install $missing" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    # Debian ships venv separately from the interpreter.
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "Installing python3-venv with apt-get..."
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "error: '$PYTHON -m venv' failed; install python3-venv (apt-get install python3-venv)." >&2
      exit 2
    fi
  fi
fi

stamp=.venv/.tfllm-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing tfllm and its dependencies into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  echo "$want" > "$stamp"
fi
