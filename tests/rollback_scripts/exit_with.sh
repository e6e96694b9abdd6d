#!/bin/sh
# Prints a few lines, the configured DEPLOY_ENV, then exits with status $1.
echo "step 1: switching release"
echo "step 2: env is ${DEPLOY_ENV:-unset}"
echo "step 3: done, exiting $1"
exit "$1"
