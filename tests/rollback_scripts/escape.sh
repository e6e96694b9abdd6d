#!/bin/sh
# Starts a child that leaves the process group (setsid) and holds stdout; PID written to $1.
setsid sleep 300 &
echo $! > "$1"
echo "leader done"
exit 0
