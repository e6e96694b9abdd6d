#!/usr/bin/env bash
# Deploy and roll back the example staging service by flipping a release symlink.
#
#   deploy.sh deploy VERSION   make releases/VERSION current; remember the old one in `previous`
#   deploy.sh rollback         make the previous release current again
#   deploy.sh status           print the current and previous versions
#
# Layout under $STAGING_RELEASE_ROOT (required):
#   releases/<version>/VERSION   one directory per release
#   current -> releases/<version>
#   previous                     the version `rollback` goes back to
#
# Like `kubectl rollout undo`, a rollback records the version it left as `previous`, so a
# second rollback undoes the first. Every step is printed on its own line: the rehearsal
# streams this output live and keeps its tail for the report.
set -euo pipefail

die() {
    echo "$*" >&2
    exit 1
}

usage() {
    echo "usage: deploy.sh deploy VERSION | rollback | status" >&2
    exit 2
}

# The version `current` points at, or nothing when no release is deployed.
current_version() {
    if [[ -L "$root/current" ]]; then
        basename "$(readlink "$root/current")"
    fi
}

previous_version() {
    if [[ -s "$root/previous" ]]; then
        head -n 1 "$root/previous"
    fi
}

# Replace $2 by $1 with a single rename(2), so readers see the old or the new, never neither.
replace() {
    if mv --version >/dev/null 2>&1; then
        mv -T -f "$1" "$2" # GNU mv: -T renames onto a symlink instead of moving into its target
    else
        python3 -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' "$1" "$2"
    fi
}

# Point `current` at releases/$1 and record $2 as the previous version.
switch_to() {
    local version="$1" previous="$2" tmp
    tmp="$root/.previous.$$"
    printf '%s\n' "$previous" >"$tmp"
    replace "$tmp" "$root/previous"
    tmp="$root/.current.$$"
    ln -sfn "releases/$version" "$tmp" # relative, so the release root can be moved
    replace "$tmp" "$root/current"
}

deploy() {
    local version="$1" from
    [[ "$version" =~ ^[0-9A-Za-z][0-9A-Za-z._+-]*$ ]] ||
        die "deploy: '$version' is not a version (letters, digits, '.', '_', '+', '-')"
    mkdir -p "$root/releases"
    if [[ ! -d "$root/releases/$version" ]]; then
        echo "deploy: creating release $version"
        mkdir -p "$root/releases/$version"
        printf '%s\n' "$version" >"$root/releases/$version/VERSION"
    fi
    from="$(current_version)"
    if [[ "$from" == "$version" ]]; then
        echo "deploy: $version is already current; nothing to do"
        return
    fi
    [[ -z "$from" ]] || echo "deploy: previous release is $from"
    switch_to "$version" "$from"
    echo "deploy: current ${from:-(none)} -> $version"
}

rollback() {
    local from to
    [[ -d "$root" ]] || die "rollback: release root $root does not exist"
    from="$(current_version)"
    to="$(previous_version)"
    [[ -n "$to" ]] || die "rollback: no previous release recorded in $root/previous; nothing to roll back to"
    [[ -f "$root/releases/$to/VERSION" ]] ||
        die "rollback: previous release $to is missing from $root/releases"
    echo "rollback: current ${from:-(none)} -> $to"
    switch_to "$to" "$from"
    echo "rollback: done; staging serves $to"
}

status() {
    echo "current: $(current_version)"
    echo "previous: $(previous_version)"
}

case "${1:-}" in
deploy) [[ $# -eq 2 ]] || usage ;;
rollback | status) [[ $# -eq 1 ]] || usage ;;
*) usage ;;
esac

[[ -n "${STAGING_RELEASE_ROOT:-}" ]] ||
    die "deploy.sh: STAGING_RELEASE_ROOT is not set (the directory that holds releases/ and current)"
root="$STAGING_RELEASE_ROOT"

case "$1" in
deploy) deploy "$2" ;;
rollback) rollback ;;
status) status ;;
esac
