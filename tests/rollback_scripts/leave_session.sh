#!/usr/bin/env bash
# Puts a job in a process group of its own (set -m), in the same session, then exits 0.
# The job's PID is written to $1; with $2 = hold, the job keeps stdout open too.
set -m
if [ "$2" = hold ]; then
    sleep 300 &
else
    sleep 300 >/dev/null 2>&1 &
fi
echo $! > "$1"
echo "leader done"
[ "$3" = hang ] && exec sleep 300
exit 0
