"""The report, summary and plan shown in docs/ci.md are real: made by a run here, normalised.

A real rehearsal (deploy, checks with an accepted finding and a blocking one, rollback,
verify, restore) against the example service with ``examples/deploy.sh``; its JSON report,
Markdown summary and ``--rehearsal-plan`` output are compared with the blocks of docs/ci.md
between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``, once what differs from
run to run (ports, paths, times, the soft-404 path) is normalised. After a change of output,
``REHEARSAL_WRITE_DOCS=1 pytest tests/test_docs_examples.py`` writes the new blocks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from plugin_helpers import write_config
from servers import DEPLOY_SCRIPT, REPO_ROOT, run_deploy

CI_PAGE = REPO_ROOT / "docs" / "ci.md"
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n(?P<fence>`{3,})(?P<lang>\w*)\n)(?P<body>.*?)"
    r"(\n(?P=fence)\n<!-- end generated -->)",
    re.S,
)
UNTIL = (date.today() + timedelta(days=30)).isoformat()
CONFIG = f"""\
defaults: {{owner: '@platform'}}
checks:
  headers: {{paths: [/], owner: '@web', rollback_note: 'Headers ship with the app.'}}
  secrets: false
accept:
  - {{check: 'headers[/]', finding: Content-Security-Policy, reason: 'CSP rollout, WEB-123',
     owner: '@web', until: {UNTIL}}}
deploy: {{command: ['./deploy.sh', 'deploy', '${{RELEASE}}'], timeout: 1m, within: 10s}}
rollback:
  command: ['./deploy.sh', 'rollback']
  env: {{STAGING_RELEASE_ROOT: '${{STAGING_RELEASE_ROOT}}'}}
  timeout: 30s
  verify: {{path: /health, track: [version], within: 10s}}
  restore: ['./deploy.sh', 'deploy', '${{RELEASE}}']
  watch: false
  owner: '@payments-oncall'
  note: 'The release symlink flips back; no migrations to undo.'
"""


def _normalised(text: str, url: str, project: Path, release_root: Path) -> str:
    text = text.replace(url, "https://staging.example.com")
    text = text.replace(str(release_root), "/srv/staging").replace(str(project), "/builds/shop")
    text = text.replace(UNTIL, "2027-01-31")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "2026-12-01T09:30:00Z", text)
    text = re.sub(
        r"/__rehearsal_[0-9a-f]{32}", "/__rehearsal_6f1e4c2b9a8d4e5f8a7b6c5d4e3f2a1b", text
    )
    # Measured times (configured ones are whole seconds or minutes): one shape, one value.
    text = re.sub(r"\b\d+ ms\b", "41 ms", text)
    text = re.sub(r"\b\d+\.\d s\b", "1.2 s", text)
    text = re.sub(r'("duration_s": )[0-9.]+', r"\g<1>0.041", text)
    text = re.sub(r'("(?:to_previous_s|to_restored_s|started_at)": )[0-9.]+', r"\g<1>0.041", text)
    # The timeline's bars: one after another, 100 ms each.
    return re.sub(
        r"(:\w+, p(\d+), )\d+, \d+",
        lambda m: f"{m[1]}{1764581400000 + 100 * int(m[2])}, {1764581400100 + 100 * int(m[2])}",
        text,
    )


@pytest.fixture
def generated(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_app_factory: object,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    run_deploy(release_root, "rollback")  # staging serves 1.4.2; the rehearsal deploys 1.5.0
    url = staging_app_factory("missing-header")  # type: ignore[operator]
    shutil.copy(DEPLOY_SCRIPT, pytester.path / "deploy.sh")
    write_config(pytester, CONFIG)
    monkeypatch.setenv("RELEASE", "1.5.0")
    monkeypatch.setenv("STAGING_RELEASE_ROOT", str(release_root))
    plan = pytester.runpytest_subprocess(f"--staging-url={url}", "--rehearsal-plan")
    assert plan.ret == 0, plan.stdout.str()
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "--rehearsal-report=report.json", "--rehearsal-summary=summary.md"
    )
    assert result.ret == 1, result.stdout.str()  # blocked by the headers it does not accept
    report = json.dumps(json.loads((pytester.path / "report.json").read_text()), indent=2)
    outputs = {
        "report-json": report,
        "summary": (pytester.path / "summary.md").read_text().rstrip("\n"),
        "plan": plan.stdout.str().rstrip("\n"),
    }
    return {
        name: _normalised(text, url, pytester.path, release_root) for name, text in outputs.items()
    }


def test_the_examples_in_the_ci_page_are_what_a_run_prints(generated: dict[str, str]) -> None:
    page = CI_PAGE.read_text(encoding="utf-8")
    found = {match["name"]: match["body"] for match in _BLOCK.finditer(page)}
    assert set(found) == set(generated), "docs/ci.md lacks a generated block"
    if os.environ.get("REHEARSAL_WRITE_DOCS"):
        page = _BLOCK.sub(lambda m: m.group(1) + generated[m["name"]] + m.group(6), page)
        CI_PAGE.write_text(page, encoding="utf-8")
        return
    stale = [name for name, body in found.items() if body != generated[name]]
    assert not stale, (
        f"docs/ci.md shows an old {', '.join(stale)}: "
        "REHEARSAL_WRITE_DOCS=1 pytest tests/test_docs_examples.py writes the new one"
    )
