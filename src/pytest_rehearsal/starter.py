"""What ``pytest --rehearsal-init`` writes: a commented starter ``rehearsal.yaml``.

It validates as is (with ``RELEASE`` set: the version under test), and the example staging
service (``make demo``) passes every check in it.
Lines that are commented-out settings start with ``# `` followed by a key or a list dash, so
that the docs test can switch them all on and prove that they validate too.
"""

from __future__ import annotations

import os
from pathlib import Path

from .activation import DEFAULT_CONFIG_NAME

__all__ = ["STARTER_CONFIG", "describe_next_steps", "write_starter_config"]

STARTER_CONFIG = """\
# rehearsal.yaml: what pytest-rehearsal checks on staging, and how it rolls back.
# Written by `pytest --rehearsal-init`; every key is explained on the Configuration page
# of the pytest-rehearsal docs.
#
# Run the rehearsal:   pytest --staging-url=https://staging.example.com
# The staging URL can also come from the STAGING_URL environment variable.
# Without a staging URL the plugin does nothing, so your usual test runs are unchanged.

# The staging URL, if you prefer it here (--staging-url and STAGING_URL win over it).
# Setting it here makes every pytest run in this project a rehearsal.
# staging_url: https://staging.example.com

# Regular expressions searched in the staging URL: a match is refused before any
# request is sent. Add your production hosts here.
# production: ['^https://(www|api)\\.example\\.com']

# Credentials. The token itself only ever comes from the environment variable named here;
# it is masked as *** in every output.
# auth:
#   header: Authorization
#   scheme: Bearer
#   token_env: STAGING_TOKEN

# Applied to every check that does not say otherwise.
defaults:
  owner: '@platform'        # who to call when a check fails; shown in every report
  timeout: 10s              # per request (--staging-timeout wins)
  retries: 2                # extra attempts for idempotent requests on transient failures

checks:
  # The service answers its health endpoint.
  health:
    path: /health
    expect_status: 200
    expect_json: {ok: true}   # a subset: the body must contain these keys with these values
    max_latency: 1s

  # Security headers of these pages, against a policy based on OWASP and the
  # MDN HTTP Observatory. A JSON response is judged by the lighter API profile.
  headers:
    paths: [/]

  # Files that must never be served (/.env, /.git/config, backups, ...), and a scan of
  # every page the rehearsal reads for leaked keys and tokens.
  secrets: true

  # Opt-in checks: only your team knows these endpoints. Remove the "# " to switch one on.
  # permissions:
  #   protected: [/admin]       # refused without credentials
  #   roles:
  #     viewer: {token_env: VIEWER_TOKEN, denied: [/admin/settings]}
  # uploads:
  #   path: /upload
  #   field: file
  #   max_bytes: 10MiB          # the largest request body the service accepts
  # retry_safe:
  #   - method: POST
  #     path: /orders
  #     json: {sku: A1, quantity: 1}
  #     idempotency_header: Idempotency-Key
  # inputs:
  #   - method: POST
  #     path: /orders
  #     json: {sku: A1, quantity: x}
  #     expect_status: 422
  #     mentions: [quantity]

# The deploy of the release under test, before the checks (optional). Leave it out when
# your CI job deploys in a step of its own before the rehearsal. ${RELEASE} is taken from
# the environment: the version under test, such as RELEASE=1.5.0.
# deploy:
#   command: ['./deploy.sh', 'deploy', '${RELEASE}']
#   timeout: 5m              # then the command's whole process group is killed
#   within: 2m               # then staging must pass the health check within this

# The rollback is rehearsed for real, once, after every check has finished. Staging must
# answer first (otherwise nothing is rolled back), then go back to the previous release,
# then come forward again with the restore: it ends as the rehearsal found it.
# Without a command the verdict is "blocked": a release without a rollback path is not ready.
rollback:
  # Your team's real rollback command. A list runs without a shell; a string is split like
  # a shell would split it, but never run by one (so no &&, | or >: write a script).
  # Replace this with yours, for example ['kubectl', 'rollout', 'undo', 'deployment/web'].
  command: ['./deploy.sh', 'rollback']
  cwd: .                    # relative to this file; cwd and env apply to deploy and restore too
  # env: {DEPLOY_ENV: staging}
  timeout: 2m               # then the command's whole process group is killed
  # After the command, the tracked fields of this answer must change: the fields that tell
  # your releases apart, so no version is written here.
  verify: {path: /health, expect_status: 200, track: [version], within: 60s}
  # Roll forward again, to the release under test. It runs whenever the command started,
  # then staging must answer as it did before the rollback.
  restore: ['./deploy.sh', 'deploy', '${RELEASE}']
  # restore_after: always     # or verified: restore only after a verified rollback
  # watch: {interval: 500ms}  # health polled during the rollback; false switches it off
  # max_recovery: 2m          # fail when going back takes longer than this
  # max_outage: 5s            # fail when health fails longer than this in a row
  # owner: '@oncall'
  # note: 'The release symlink flips back; migrations are additive only.'
"""


def write_starter_config(directory: Path) -> Path:
    """Write :data:`STARTER_CONFIG` to ``rehearsal.yaml`` in *directory* and return its path.

    Never overwrites: raises :class:`FileExistsError` with a message naming the file when
    anything (a file, a directory, a dangling symlink) already has that name.
    """
    path = directory / DEFAULT_CONFIG_NAME
    try:
        # O_EXCL: the check and the creation are one step, so a file that appears in between
        # is not clobbered (and O_EXCL does not follow a symlink).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; not overwriting it (remove it first to start over)"
        ) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(STARTER_CONFIG)
    return path


def describe_next_steps(path: Path) -> str:
    """What ``pytest --rehearsal-init`` prints after writing *path*."""
    return (
        f"rehearsal: wrote {path}\n"
        "next steps:\n"
        "  1. set rollback.command and rollback.restore to your team's real commands\n"
        "  2. run the rehearsal: RELEASE=1.5.0 pytest --staging-url=https://staging.example.com\n"
        "  3. add it to CI: see the CI page of the pytest-rehearsal docs\n"
    )
