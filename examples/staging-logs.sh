#!/usr/bin/env bash
# The log command of the example service, for the logging check (examples/rehearsal.yaml):
# print the lines of its access log written since $REHEARSAL_SINCE.
#
# The rehearsal runs it with rollback.cwd and rollback.env, plus REHEARSAL_MARKER and
# REHEARSAL_SINCE (UTC, such as 2026-01-01T12:00:00Z). The log is $STAGING_ACCESS_LOG, else
# $STAGING_RELEASE_ROOT/access.log, where examples/serve.py writes it by default. Its lines
# start with the same kind of UTC timestamp, so comparing the first 19 characters as text
# compares the times. A real service would run `kubectl logs --since-time="$REHEARSAL_SINCE"`
# or `journalctl --since` here instead.
set -euo pipefail

: "${REHEARSAL_SINCE:?REHEARSAL_SINCE is not set (the rehearsal sets it)}"
log="${STAGING_ACCESS_LOG:-${STAGING_RELEASE_ROOT:?set STAGING_RELEASE_ROOT or STAGING_ACCESS_LOG}/access.log}"
if [[ ! -f "$log" ]]; then
    echo "staging-logs.sh: no access log at $log (is the service running with --access-log?)" >&2
    exit 1
fi
awk -v since="${REHEARSAL_SINCE:0:19}" 'substr($1, 1, 19) >= since' "$log"
