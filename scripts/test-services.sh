#!/usr/bin/env bash
# Installs (once) the system packages that service-marked tests need. Idempotent; quiet when done.
# Each capability appends its own section below.
set -euo pipefail

need_apt=()
# --- browser tests (reports, serving page): Debian's Chromium
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# --- PostgreSQL (multi-worker tuning)
# (tests/tuning/conftest.py starts a throwaway cluster with initdb + pg_ctl; only the binaries are needed)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# --- a C compiler for dlpipe's compiled CPU kernels (src/dlpipe/models/native; without one they fall
#     back to torch's kernels and tests/models/test_fused.py skips its kernel checks)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc libc6-dev)

if [ "${#need_apt[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
