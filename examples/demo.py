"""``make demo``: rehearse a release of the example staging service, rollback included.

1. ``.demo/`` (fresh each run) becomes the release root, with 1.4.2 deployed: the release
   in service.
2. ``serve.py`` starts the example app on a free port on 127.0.0.1.
3. pytest rehearses the release under test, ``RELEASE=1.5.0``: the real ``deploy.sh deploy``
   first, then every check in ``rehearsal.yaml`` plus the user-written checks in
   ``demo_checks/``, then the real ``deploy.sh rollback``, the check that staging went back
   to the release it served before the deploy (1.4.2), and the restore to ``${RELEASE}``,
   with their figures, printed the way a reviewer reads them.
4. The path of the Markdown summary is printed; the exit status is pytest's.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
DEMO = ROOT / ".demo"
DEPLOY = EXAMPLES / "deploy.sh"
IN_SERVICE = "1.4.2"
RELEASE = "1.5.0"  # the release under test: $RELEASE in rehearsal.yaml
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
REHEARSAL_TIMEOUT = 600.0


def say(message: str) -> None:
    """One line of demo narration, set apart from the output of the commands it runs."""
    print(f"==> {message}", flush=True)


def deploy(env: dict[str, str], *args: str) -> None:
    """Run ``deploy.sh`` with *args*; its output goes straight to the terminal."""
    subprocess.run([str(DEPLOY), *args], env=env, check=True, timeout=60)


def start_server(
    env: dict[str, str], release_root: Path, port_file: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``serve.py`` on *release_root* and return the process and its base URL.

    Raises :class:`RuntimeError` if it exits or does not announce its URL in time.
    """
    command = [sys.executable, str(EXAMPLES / "serve.py"), "--release-root", str(release_root)]
    process = subprocess.Popen([*command, "--port-file", str(port_file)], env=env)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if port_file.exists():
            return process, port_file.read_text(encoding="utf-8").strip()
        if process.poll() is not None:
            raise RuntimeError(f"serve.py exited with status {process.returncode} on startup")
        time.sleep(0.05)
    stop_server(process)
    raise RuntimeError(f"serve.py did not write {port_file} within {STARTUP_TIMEOUT:.0f}s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server, and SIGKILL it if it has not stopped within the timeout."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def rehearsal_command(url: str) -> list[str]:
    """The pytest invocation that rehearses the release against *url*."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--staging-url={url}",
        f"--rehearsal-config={EXAMPLES / 'rehearsal.yaml'}",
        f"--rehearsal-report={DEMO / 'report.json'}",
        f"--rehearsal-summary={DEMO / 'summary.md'}",
        str(EXAMPLES / "demo_checks"),
    ]


def main() -> int:
    """Run the demo; the exit status is pytest's (0: the release is ready)."""
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir()
    # Fresh tokens every run: the server checks them, pytest sends them, and the reports
    # must show them only as ***.
    tokens = {"STAGING_TOKEN": secrets.token_urlsafe(24), "VIEWER_TOKEN": secrets.token_urlsafe(24)}
    env = {
        **os.environ,
        **tokens,
        "STAGING_RELEASE_ROOT": str(DEMO),
        "STAGING_ADMIN_TOKEN": tokens["STAGING_TOKEN"],
        "STAGING_VIEWER_TOKEN": tokens["VIEWER_TOKEN"],
        "RELEASE": RELEASE,
    }
    say(f"release root {DEMO.relative_to(ROOT)}: {IN_SERVICE} in service")
    try:
        deploy(env, "deploy", IN_SERVICE)
        process, url = start_server(env, DEMO, DEMO / "server.url")
    except (RuntimeError, subprocess.SubprocessError) as exc:
        say(f"demo setup failed: {exc}")
        return 1
    try:
        say(f"staging runs {IN_SERVICE} at {url}; rehearsing the release RELEASE={RELEASE}")
        command = rehearsal_command(url)
        print(" ".join(["python", *command[1:]]).replace(str(ROOT) + os.sep, ""), flush=True)
        status = subprocess.run(
            command, cwd=ROOT, env=env, check=False, timeout=REHEARSAL_TIMEOUT
        ).returncode
    except subprocess.TimeoutExpired:
        say(f"the rehearsal did not finish within {REHEARSAL_TIMEOUT:.0f}s")
        return 1
    finally:
        stop_server(process)
    folder = DEMO.relative_to(ROOT)
    say(
        f"pytest exited with status {status}; the Markdown summary a reviewer reads is "
        f"{folder}/summary.md, the JSON report {folder}/report.json"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
