#!/bin/sh
# The rollback the benchmarks rehearse: examples/deploy.sh rollback, counted. Each run appends
# a line to $BENCH_ROLLBACK_LOG (when set), so the bench can show it ran once per pytest run.
set -eu
if [ -n "${BENCH_ROLLBACK_LOG:-}" ]; then
    echo "rollback pid $$" >>"$BENCH_ROLLBACK_LOG"
fi
exec "$(dirname "$0")/../examples/deploy.sh" rollback
