#!/bin/sh
# Prints "ready", then waits (at most ~10 s) for the file $1 to appear. Only a caller that
# sees "ready" while the command still runs can create it in time.
echo "ready"
i=0
while [ ! -e "$1" ] && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
if [ -e "$1" ]; then echo "saw go"; else echo "no go"; fi
