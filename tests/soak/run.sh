#!/bin/bash
# tests/soak/run.sh MINUTES: the soak test (tests/soak/soak.c) for MINUTES minutes against the
# ASan+UBSan build (build-asan/, configured and built as .ci/test does). ASan's quarantine is kept
# small (16 MiB) so that the daemon's RSS can level off; use-after-free is still caught within it.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:?usage: tests/soak/run.sh MINUTES}
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTCPEDU_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target soak tcpedud tcpeductl
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:quarantine_size_mb=16
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SOAK_MINUTES=$minutes exec build-asan/tests/soak/soak
