#!/bin/sh
# Hangs and ignores SIGTERM, like a stuck deploy. Two background children inherit the
# ignored SIGTERM; every PID of the group is appended to the file named by $1.
trap '' TERM
sleep 300 &
echo $! >> "$1"
sleep 300 &
echo $! >> "$1"
echo $$ >> "$1"
echo "started"
wait
