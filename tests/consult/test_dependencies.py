"""The running environment is exactly what the lock files pin.

An unpinned transitive client library (redis-py) once changed under the chat in production. So
requirements.txt and requirements-dev.txt, compiled by `make lock` from requirements*.in, pin every
package, transitive ones included, and these tests fail when an installed package is pinned by no
file or installed at another version than its pin, or when a lock file line is anything but an
exact pin (a range, a URL or a local path would let the installed set drift again).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK_FILES = ("requirements.txt", "requirements-dev.txt")
IN_FILES = {"requirements.in": "requirements.txt", "requirements-dev.in": "requirements-dev.txt"}
# The installers themselves (a fresh virtualenv brings pip and setuptools) and the project.
IGNORED = {"pip", "setuptools", "wheel", "consult"}
# `name==version` or `name[extra,...]==version`, nothing else on the line.
PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._,-]+\])?==(?P<version>[^\s;#]+)$"
)
UNPINNED_FIX = "name it in requirements.in or requirements-dev.in and run `make lock`, or `.venv/bin/pip uninstall` it"
VERSION_FIX = "`make test` installs the pinned versions"


def _requirement_lines(path: Path) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append((number, line))
    return lines


def _pins(filename: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for _, line in _requirement_lines(REPO / filename):
        match = PIN.match(line)
        assert match, f"{filename}: {line!r} is not an exact pin"
        pins[canonicalize_name(match["name"])] = Version(match["version"])
    return pins


def _installed() -> dict[str, Version]:
    # distributions() walks sys.path in order, so the first one of a name is the one imported.
    installed: dict[str, Version] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            installed.setdefault(canonicalize_name(name), Version(distribution.version))
    return installed


def test_every_line_of_the_lock_files_is_an_exact_pin() -> None:
    wrong = [
        f"{filename}:{number}: {line}"
        for filename in LOCK_FILES
        for number, line in _requirement_lines(REPO / filename)
        if not PIN.match(line)
    ]

    assert not wrong, "lines that are not `name==version` (regenerate with `make lock`):\n" + "\n".join(wrong)


def test_every_installed_package_is_pinned_at_its_installed_version() -> None:
    pins = {**_pins("requirements.txt"), **_pins("requirements-dev.txt")}

    installed = {name: version for name, version in _installed().items() if name not in IGNORED}
    unpinned = sorted(f"{name}=={version}" for name, version in installed.items() if name not in pins)
    different = sorted(
        f"{name}=={version} installed, {pins[name]} pinned"
        for name, version in installed.items()
        if name in pins and version != pins[name]
    )

    assert not unpinned, f"installed but pinned by no requirements file ({UNPINNED_FIX}): {', '.join(unpinned)}"
    assert not different, f"installed at another version than pinned ({VERSION_FIX}): {', '.join(different)}"


def test_the_dev_lock_holds_the_runtime_lock_at_the_same_versions() -> None:
    # `make test` installs requirements-dev.txt alone: the tests must run on the runtime set as pinned.
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")

    missing_or_different = sorted(
        f"{name}: {version} in requirements.txt, {dev.get(name, 'nothing')} in requirements-dev.txt"
        for name, version in runtime.items()
        if dev.get(name) != version
    )

    assert not missing_or_different, "\n".join(missing_or_different)


def test_the_lock_files_are_compiled_from_the_current_in_files() -> None:
    # Someone who edits a .in file and forgets `make lock` installs the old set.
    stale = []
    for in_file, lock_file in IN_FILES.items():
        pins = _pins(lock_file)
        for _, line in _requirement_lines(REPO / in_file):
            if line.startswith("-"):
                continue
            requirement = Requirement(line)
            pinned = pins.get(canonicalize_name(requirement.name))
            if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
                stale.append(f"{in_file} asks for {line}, {lock_file} pins {pinned or 'nothing'}")

    assert not stale, "run `make lock`:\n" + "\n".join(stale)
