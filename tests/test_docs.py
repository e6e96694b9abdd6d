"""The documentation cannot rot: its examples go through the real loader and the example service.

- Every ``yaml`` block of ``docs/*.md`` and ``README.md`` that looks like a rehearsal config is
  parsed by :func:`pytest_rehearsal.config_loader.parse_config`. It must validate, unless an
  ``<!-- invalid -->`` comment precedes it: then it must fail, and when a ``text`` block
  follows, that block must be the exact message (after ``ERROR: ``, as pytest prints it).
- Every ``python`` block that is a test module runs under pytester against the example
  service with the starter config, and its tests must pass. Every block that starts with
  ``# conftest.py`` runs as the conftest of a full rehearsal, real rollback included, which
  must end ``ready``. Every other ``python`` block must at least compile.
- The starter config validates (its commented-out settings too), the example service passes
  it with the real ``deploy.sh``, and ``write_starter_config`` never overwrites.

``mkdocs build --strict`` is not run here: ``make docs`` does that.
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_rehearsal.config import ConfigError
from pytest_rehearsal.config_loader import parse_config
from pytest_rehearsal.starter import STARTER_CONFIG, describe_next_steps, write_starter_config
from servers import DEPLOY_SCRIPT, ExampleServer

REPO = Path(__file__).resolve().parent.parent
PAGES = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)[ \t]*$")
_COMMENT = re.compile(r"^<!--\s*(?P<word>[\w-]+)\s*-->$")
# A block is a rehearsal config when it has one of the config file's top-level keys.
_CONFIG_KEY = re.compile(
    r"^(?:staging_url|production|ca_bundle|auth|defaults|checks|deploy|rollback|accept)[ 	]*:",
    re.MULTILINE,
)
# A commented-out setting of the starter: "# key: ..." or "# - ...", at any indentation.
_COMMENTED_SETTING = re.compile(r"^([ \t]*)# ([ \t]*(?:[a-z_]+:(?:[ \t]|$)|- ).*)$", re.MULTILINE)
_FILE_NAME = re.compile(r"^# (?P<name>[\w.]+\.py)$")
REPORT = "report.json"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page: where it is, its language, text and annotation."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    comment: str | None  # the word of an HTML comment on the line just before the fence
    next: Block | None = None  # the block that follows with only blank lines between

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The top-level fenced blocks of *page* (blocks nested in a longer fence are content)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[tuple[int, int, str, str, str | None]] = []  # start, end, lang, text, comment
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or not opening["lang"]:
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        previous = lines[index - 1].strip() if index else ""
        comment = _COMMENT.match(previous)
        text = "\n".join(lines[index + 1 : end]) + "\n"
        found.append((index, end, opening["lang"], text, comment["word"] if comment else None))
        index = end + 1
    blocks: list[Block] = []
    for position in reversed(range(len(found))):
        start, end, lang, text, comment = found[position]
        following = None
        if blocks:
            next_start = found[position + 1][0]
            if all(not line.strip() for line in lines[end + 1 : next_start]):
                following = blocks[0]
        blocks.insert(0, Block(page, start + 1, lang, text, comment, following))
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in read_blocks(page)]
CONFIG_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "yaml" and _CONFIG_KEY.search(b.text)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python"]


def _file_name(block: Block) -> str | None:
    first = block.text.splitlines()[0] if block.text.strip() else ""
    match = _FILE_NAME.match(first)
    return match["name"] if match else None


def _test_names(block: Block) -> list[str]:
    tree = ast.parse(block.text)
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


TEST_MODULES = [b for b in PYTHON_BLOCKS if _test_names(b)]
CONFTESTS = [b for b in PYTHON_BLOCKS if _file_name(b) == "conftest.py"]
SNIPPETS = [b for b in PYTHON_BLOCKS if b not in TEST_MODULES and b not in CONFTESTS]


def _id(block: Block) -> str:
    return block.where


def _ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


# -- (a) config examples ------------------------------------------------------------------


def test_the_docs_have_config_examples_of_both_kinds() -> None:
    # Guards the harvesting itself: a broken fence regex would make every test below vanish.
    valid = [b for b in CONFIG_BLOCKS if b.comment != "invalid"]
    invalid = [b for b in CONFIG_BLOCKS if b.comment == "invalid"]
    pages = {b.page.name for b in valid}
    assert len(valid) >= 8, _ids(valid)
    assert {"configuration.md", "rollback.md", "index.md", "README.md"} <= pages
    assert len(invalid) >= 5, _ids(invalid)
    assert all(b.next is not None and b.next.lang == "text" for b in invalid), _ids(invalid)


@pytest.mark.parametrize("block", [b for b in CONFIG_BLOCKS if b.comment != "invalid"], ids=_id)
def test_config_example_validates(block: Block) -> None:
    parse_config(block.text, REPO / "rehearsal.yaml", EXAMPLE_ENVIRON)


@pytest.mark.parametrize("block", [b for b in CONFIG_BLOCKS if b.comment == "invalid"], ids=_id)
def test_invalid_config_example_fails_with_the_documented_message(block: Block) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(block.text, Path("rehearsal.yaml"), EXAMPLE_ENVIRON)
    if block.next is not None and block.next.lang == "text":
        shown = block.next.text.strip()
        assert shown.startswith("ERROR: "), block.next.where
        assert str(raised.value) == shown.removeprefix("ERROR: ")


def test_comments_mark_only_config_examples() -> None:
    # An <!-- invalid --> before anything else would be silently ignored.
    stray = [b for b in ALL_BLOCKS if b.comment == "invalid" and b not in CONFIG_BLOCKS]
    assert not stray, _ids(stray)


# -- troubleshooting covers every message ---------------------------------------------------

SRC = REPO / "src" / "pytest_rehearsal"
TROUBLESHOOTING = REPO / "docs" / "troubleshooting.md"
# Where the config loader states a problem: the argument that holds the problem text.
_LOADER_PROBLEM_ARGS = {"Invalid": 0, "invalid": 0, "_Refused": 2, "error": 2, "record": 2}
_CONFIG_MODULES = sorted(path.name for path in SRC.glob("config_*.py"))
_USAGE_EXCEPTIONS = {"ConfigError", "UsageError", "LookupError", "FileExistsError"}
# Functions of lifecycle.py and command.py whose texts explain why a deploy or a rollback
# failed, or what it left behind.
_ROLLBACK_EXPLAINERS = {
    "preflight",
    "_check_executable",
    "_check_interpreter",
    "_start_error",
    "describe",
    "notes",
    "_emit_line",
    "_describe_fetch",
    "_tail_block",
    "previous_step",
    "_baseline_problem",
    "preflight_step",
    "command_step",
    "verify_step",
    "restore_verify_step",
    "health_step",
    "_after_interrupt",
    "_note_what_verify_proves",
    "_judge_budgets",
    "_note_staging_left",
    "_rollback_steps",
    "rehearse_deploy",
}
# ${RELEASE} in the starter and the docs' examples: the version under test.
EXAMPLE_ENVIRON = {"RELEASE": "1.5.0", "PREVIOUS_RELEASE": "1.4.2"}
# Shorter literal parts are fragments ("its limit"), not something a reader searches for.
_MIN_KEY = 10


def _literal_key(node: ast.AST) -> str | None:
    """The longest literal part of a string or f-string: what a reader would search for."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        parts = [node.value]
    elif isinstance(node, ast.JoinedStr):
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
    else:
        return None
    key = max(parts, key=len).strip() if parts else ""
    return key if len(key) >= _MIN_KEY else None


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _loader_problems() -> set[str]:
    trees = [ast.parse((SRC / name).read_text(encoding="utf-8")) for name in _CONFIG_MODULES]
    keys = set()
    for node in (node for tree in trees for node in ast.walk(tree)):
        if isinstance(node, ast.Call) and _call_name(node) in _LOADER_PROBLEM_ARGS:
            index = _LOADER_PROBLEM_ARGS[_call_name(node) or ""]
            if len(node.args) > index and (key := _literal_key(node.args[index])):
                keys.add(key)
    return keys


def _raised_messages() -> set[str]:
    keys = set()
    for module in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            exc = node.exc if isinstance(node, ast.Raise) else None
            if not (isinstance(exc, ast.Call) and _call_name(exc) in _USAGE_EXCEPTIONS):
                continue
            if exc.args and (key := _literal_key(exc.args[0])):
                keys.add(key)
    return keys


def _rollback_explanations() -> set[str]:
    functions = {
        node.name: node
        for module in ("lifecycle.py", "lifecycle_steps.py", "command.py")
        for node in ast.walk(ast.parse((SRC / module).read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef)
    }
    missing = _ROLLBACK_EXPLAINERS - set(functions)
    assert not missing, f"no function {missing} any more: update _ROLLBACK_EXPLAINERS"
    keys = set()
    for name in _ROLLBACK_EXPLAINERS:
        body = functions[name].body
        if body and isinstance(body[0], ast.Expr):  # the docstring is not a message
            body = body[1:]
        for statement in body:
            for node in ast.walk(statement):
                if isinstance(node, (ast.Constant, ast.JoinedStr)) and (key := _literal_key(node)):
                    keys.add(key)
    return keys


@pytest.mark.parametrize(
    ("source", "minimum"),
    [(_loader_problems, 40), (_raised_messages, 5), (_rollback_explanations, 20)],
    ids=["config loader problems", "usage errors raised", "rollback failures"],
)
def test_troubleshooting_lists_every_message(source: Any, minimum: int) -> None:
    # The floor catches a refactor that hides the messages from this search.
    keys = source()
    assert len(keys) >= minimum, sorted(keys)
    page = " ".join(TROUBLESHOOTING.read_text(encoding="utf-8").split())
    undocumented = sorted(key for key in keys if " ".join(key.split()) not in page)
    assert not undocumented, "add these messages to docs/troubleshooting.md"


# -- (b) Python examples ------------------------------------------------------------------


@pytest.fixture
def bare_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An empty pytester project in an environment without any rehearsal settings."""
    for name in ("STAGING_URL", "GITHUB_STEP_SUMMARY", "STAGING_TOKEN", "CHAT_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RELEASE", raising=False)  # restored after the test, whoever sets it
    return pytester


@pytest.fixture
def project(bare_project: pytest.Pytester) -> pytest.Pytester:
    """A pytester project holding the starter config (its ${RELEASE} set)."""
    write_starter_config(bare_project.path)
    os.environ["RELEASE"] = "1.5.0"  # bare_project's monkeypatch undoes it after the test
    return bare_project


def _report(project: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project.path / REPORT).read_text(encoding="utf-8"))
    return data


def test_the_docs_have_python_examples_of_every_kind() -> None:
    assert len(TEST_MODULES) >= 3, _ids(TEST_MODULES)
    assert len(CONFTESTS) >= 4, _ids(CONFTESTS)
    assert any(b.page.name == "README.md" for b in TEST_MODULES)


@pytest.mark.parametrize("block", TEST_MODULES, ids=_id)
def test_python_example_passes_against_the_example_service(
    block: Block, project: pytest.Pytester, example_server: ExampleServer
) -> None:
    name = _file_name(block) or "test_example.py"
    (project.path / name).write_text(block.text, encoding="utf-8")
    result = project.runpytest(
        f"--staging-url={example_server.url}", "--no-rollback", f"--rehearsal-report={REPORT}"
    )
    assert result.ret == 0, result.stdout.str()
    outcomes = {
        check["id"].rsplit("::", 1)[-1]: check["outcome"]
        for check in _report(project)["checks"]
        if check["id"].startswith(name)
    }
    assert outcomes == dict.fromkeys(_test_names(block), "passed")


def _rehearsable(project: pytest.Pytester, release_root: Path, mp: pytest.MonkeyPatch) -> None:
    """The starter's ``./deploy.sh`` next to the config, on the test's release root."""
    shutil.copy2(DEPLOY_SCRIPT, project.path / "deploy.sh")
    mp.setenv("STAGING_RELEASE_ROOT", str(release_root))
    mp.setenv("RELEASE", "1.5.0")  # the release under test, which the restore goes back to


@pytest.mark.parametrize("block", CONFTESTS, ids=_id)
def test_conftest_example_runs_in_a_full_rehearsal(
    block: Block,
    project: pytest.Pytester,
    example_url: str,
    release_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _rehearsable(project, release_root, monkeypatch)
    project.makeconftest(block.text)
    project.makepyfile(test_unit="def test_unit():\n    assert True\n")
    result = project.runpytest(f"--staging-url={example_url}", f"--rehearsal-report={REPORT}")
    assert result.ret == 0, result.stdout.str()
    report = _report(project)
    assert report["verdict"] == "ready", report["rollback"]
    assert report["rollback"]["outcome"] == "passed"


@pytest.mark.parametrize("block", SNIPPETS, ids=_id)
def test_other_python_example_compiles(block: Block) -> None:
    compile(block.text, block.where, "exec")


# -- (c) the starter config ---------------------------------------------------------------


def test_starter_config_validates() -> None:
    config = parse_config(STARTER_CONFIG, Path("rehearsal.yaml"), EXAMPLE_ENVIRON)
    assert config.staging_url is None  # a project stays dormant until a URL is given
    assert config.auth is None  # no token variable required to start
    assert config.checks.health is not None
    assert config.checks.health.expect_json == {"ok": True}
    assert config.checks.headers is not None
    assert config.checks.secrets is not None
    assert config.rollback.command == ("./deploy.sh", "rollback")
    assert config.rollback.verify is not None
    # The safe pattern: something that tells releases apart, and a restore to the release
    # under test, with no version written in the file.
    assert config.rollback.verify.track == ("version",)
    assert config.rollback.verify.expect_json is None
    assert config.rollback.restore == ("./deploy.sh", "deploy", "1.5.0")
    assert config.deploy is None  # a CI step may deploy instead
    assert "1.5.0" not in STARTER_CONFIG.replace("RELEASE=1.5.0", "")


def test_starter_config_settings_left_commented_out_validate_too() -> None:
    enabled = _COMMENTED_SETTING.sub(r"\1\2", STARTER_CONFIG)
    config = parse_config(enabled, Path("rehearsal.yaml"), EXAMPLE_ENVIRON)
    checks = config.checks
    assert config.staging_url is not None
    assert config.production
    assert config.auth is not None
    assert checks.permissions is not None
    assert checks.uploads is not None
    assert checks.retry_safe
    assert checks.inputs
    assert config.rollback.restore is not None
    assert config.rollback.env
    assert config.deploy is not None
    assert config.deploy.command == ("./deploy.sh", "deploy", "1.5.0")
    assert config.rollback.max_outage is not None


def _documented_init_output() -> list[list[str]]:
    """The output shown after ``$ pytest --rehearsal-init`` in the docs' console blocks."""
    shown = []
    for block in ALL_BLOCKS:
        lines = block.text.splitlines()
        if block.lang != "console" or "$ pytest --rehearsal-init" not in lines:
            continue
        after = lines[lines.index("$ pytest --rehearsal-init") + 1 :]
        output = list(itertools.takewhile(lambda line: not line.startswith("$ "), after))
        while output and not output[-1].strip():
            output.pop()
        shown.append(output)
    return shown


def test_the_new_user_walkthrough_works_as_documented(
    bare_project: pytest.Pytester,
    example_url: str,
    release_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Getting started: pytest --rehearsal-init, deploy.sh beside the config, one URL.
    project = bare_project
    created = project.runpytest("--rehearsal-init")
    assert created.ret == 0
    documented = _documented_init_output()
    assert len(documented) >= 2, "the init output is shown in index.md and getting-started.md"
    home = str(project.path)
    for lines in documented:
        assert created.outlines == [line.replace("/home/you/shop", home) for line in lines]
    assert (project.path / "rehearsal.yaml").read_text(encoding="utf-8") == STARTER_CONFIG

    again = project.runpytest("--rehearsal-init")
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    again.stderr.fnmatch_lines(["ERROR: *rehearsal.yaml already exists; not overwriting it*"])

    _rehearsable(project, release_root, monkeypatch)
    result = project.runpytest(f"--staging-url={example_url}", f"--rehearsal-report={REPORT}")
    assert result.ret == 0, result.stdout.str()
    report = _report(project)
    assert report["verdict"] == "ready"
    assert [c["id"] for c in report["checks"] if c["outcome"] != "passed"] == []
    assert {check["name"] for check in report["checks"]} == {"health", "headers", "secrets"}
    # It really rolled back, and left staging as it found it.
    result.stdout.fnmatch_lines(["rollback passed: previous release (version 1.4.2) after *"])
    assert (release_root / "current").readlink().name == "1.5.0"


def test_write_starter_config_writes_the_starter(tmp_path: Path) -> None:
    path = write_starter_config(tmp_path)
    assert path == tmp_path / "rehearsal.yaml"
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG


@pytest.mark.parametrize("existing", ["file", "directory", "dangling symlink"])
def test_write_starter_config_never_overwrites(tmp_path: Path, existing: str) -> None:
    path = tmp_path / "rehearsal.yaml"
    if existing == "file":
        path.write_text("checks: {health: false}\n", encoding="utf-8")
    elif existing == "directory":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "elsewhere.yaml")
    before = path.read_text(encoding="utf-8") if existing == "file" else None
    with pytest.raises(FileExistsError, match="already exists; not overwriting it") as raised:
        write_starter_config(tmp_path)
    assert str(path) in str(raised.value)
    if before is not None:
        assert path.read_text(encoding="utf-8") == before
    assert not (tmp_path / "elsewhere.yaml").exists()


def test_next_steps_name_the_file_and_the_first_command(tmp_path: Path) -> None:
    text = describe_next_steps(tmp_path / "rehearsal.yaml")
    assert text.startswith(f"rehearsal: wrote {tmp_path / 'rehearsal.yaml'}\n")
    assert "pytest --staging-url=" in text
    assert "rollback.command" in text
