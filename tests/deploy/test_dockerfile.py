"""deploy/Dockerfile: pinned base, multi-stage, non-root, no dev dependencies, real COPY sources."""

from __future__ import annotations

import fnmatch
import glob
import json
import re
import shlex
import tomllib

import pytest

from tests.deploy.helpers import DOCKERFILE, REPO, RUNBOOK


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def copy_sources() -> list[str]:
    sources: list[str] = []
    for word, args in instructions():
        if word not in ("COPY", "ADD"):
            continue
        parts = json.loads(args) if args.startswith("[") else shlex.split(args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        assert len(parts) >= 2, f"{word} {args}"
        sources.extend(parts[:-1])
    return sources


def dockerignore_patterns() -> list[str]:
    path = REPO / ".dockerignore"
    if not path.exists():
        return []
    return [
        ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    rel = rel.rstrip("/")
    result = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(rel, pat) or rel.startswith(pat + "/"):
            result = not negate
    return result


def test_every_copy_source_exists_and_is_in_the_context():
    sources = copy_sources()
    assert sources, "no COPY in the Dockerfile"
    patterns = dockerignore_patterns()
    for src in sources:
        matches = glob.glob(str(REPO / src))
        assert matches, f"COPY source {src!r} does not exist in the repository"
        assert not ignored(src, patterns), f"COPY source {src!r} is excluded by .dockerignore"


def test_every_package_is_copied():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {s.rstrip("/") for s in copy_sources()}
    for pattern in includes:
        top = pattern.rstrip("*").rstrip(".")
        assert top in copied, f"package {top} is not copied into the build stage"
    assert {"pyproject.toml", "README.md"} <= copied


# Files in the packages the code does not read at run time (README pictures, reports).
NOT_PACKAGE_DATA = ("service/console/screenshots/", "loadtest/report/")


def test_every_file_the_packages_read_is_installed_with_them():
    """A rule, the screening policy, a Lua library, the console, the model: what the code
    reads must be package data, or the installed copy (the image) runs without it (the
    screening policy was missing: the image's API never became ready)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    declared = pyproject["tool"]["setuptools"]["package-data"]
    for package in ("rules", "service", "streams", "models", "loadtest"):
        for path in (REPO / package).rglob("*"):
            if not path.is_file() or path.suffix == ".py" or "__pycache__" in path.parts:
                continue
            if path.relative_to(REPO).as_posix().startswith(NOT_PACKAGE_DATA):
                continue
            inner = path.relative_to(REPO / package).as_posix()
            assert any(fnmatch.fnmatch(inner, glob_) for glob_ in declared.get(package, [])), (
                f"{package}/{inner} is not package data in pyproject.toml"
            )


def test_base_images_are_pinned():
    stages: set[str] = set()
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    for args in froms:
        parts = [p for p in args.split() if not p.startswith("--")]
        image = parts[0]
        if image.lower() in stages:
            continue
        assert "$" not in image, f"base image {image!r} comes from a build arg"
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+[\w.-]*$", image), (
            f"base image {image!r} is not pinned to an exact version or digest"
        )
        assert image.startswith("python:3.11"), image
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2].lower())


def test_runs_as_non_root():
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER instruction: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is {users[-1]!r}"


def test_entrypoint_and_healthcheck():
    ins = instructions()
    entry = [args for word, args in ins if word == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["fraudwatch"]
    assert any(word == "HEALTHCHECK" and "NONE" not in args for word, args in ins)


def test_the_runbook_runs_commands_through_the_entrypoint():
    # `docker compose run api fraudwatch layout` ran `fraudwatch fraudwatch layout`: refused.
    runs = re.findall(r"docker compose run [^\n]*?(?:api|worker) \\?\s*(\S+)", RUNBOOK.read_text())
    assert runs and "fraudwatch" not in runs


@pytest.mark.parametrize("dev_tool", ["pytest", "ruff", "mypy", "[dev]", "httpx"])
def test_no_dev_dependencies_installed(dev_tool):
    for word, args in instructions():
        if word == "RUN":
            assert dev_tool not in args, f"RUN installs a dev dependency: {args}"
