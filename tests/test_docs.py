"""The README is a contract with users: it must list what the code does."""

from nianbao.parsers.problems import PROBLEM_CODES

from .helpers import ROOT

README = (ROOT / "README.md").read_text("utf-8")


def test_readme_lists_every_problem_code():
    missing = [code for code in sorted(PROBLEM_CODES) if f"`{code}`" not in README]
    assert missing == []


def test_readme_shows_the_two_setup_commands():
    assert "make run" in README and "make test" in README
