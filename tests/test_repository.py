"""The repository keeps its promises to a newcomer: the README's two commands are the ones
CI runs, every module has its folder and scripts, and nothing reads the reference material."""

from __future__ import annotations

import re
from pathlib import Path

from lab.core.modules import all_modules

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _bash_blocks(text: str):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_readme_test_command_is_what_ci_runs():
    commands = [block.strip() for block in _bash_blocks(README)]
    test_command = next(c for c in commands if "pytest" in c)
    ci_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci_script.splitlines()


def test_ci_checks_the_style_after_the_tests_with_the_venvs_ruff():
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "set -euo pipefail" in lines  # so a ruff finding fails CI
    folders = "lab tests scripts exercises workshop_materials"
    tests = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    check = lines.index(f".venv/bin/ruff check {folders}")
    style = lines.index(f".venv/bin/ruff format --check {folders}")
    assert tests < check < style


def test_readme_install_command_starts_the_module_12_demo():
    first = _bash_blocks(README)[0].strip()
    assert "pip install -e ." in first and first.endswith("bplab demo 12")


def test_every_module_has_a_folder_a_lesson_and_its_scripts():
    for spec in all_modules():
        folder = REPO / "workshop_materials" / spec.folder
        assert (folder / "README.md").is_file(), folder
        for script in folder.glob("*.py"):
            text = script.read_text(encoding="utf-8")
            assert "launch(" in text and len(text.splitlines()) < 20, f"{script} is not thin"
        assert f"bplab demo {spec.number}" in README


def test_the_module_table_starts_each_module_with_a_command_that_works_after_the_install():
    """`bplab` is not on PATH after the install command; `.venv/bin/bplab` is."""
    for spec in all_modules():
        assert f"`.venv/bin/bplab demo {spec.number}`" in README, spec.number


def test_nothing_in_the_project_reads_the_reference_folder():
    for path in list(REPO.glob("lab/**/*.py")) + list(REPO.glob("workshop_materials/**/*.py")):
        assert "shared/" not in path.read_text(encoding="utf-8"), path
