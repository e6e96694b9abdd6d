#!/bin/sh
# Exits 0 at once, leaving a background child that still holds stdout (PID written to $1).
sleep 300 &
echo $! > "$1"
echo "leader done"
exit 0
