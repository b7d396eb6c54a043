"""`csp-bot --help` imports no database layer and no python-telegram-bot: it answers at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from csp_bot.bot import cli
from csp_bot.handlers.report import FORMATS

PROBE = """
import sys
from csp_bot.bot import cli
try:
    cli.main(["--help"])
except SystemExit:
    pass
heavy = sorted(name for name in ("sqlalchemy", "sqlmodel", "telegram", "jinja2", "pydantic")
               if name in sys.modules)
print("heavy:", ",".join(heavy))
"""


def test_help_imports_nothing_heavy() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert "usage: csp-bot" in done.stdout
    assert done.stdout.strip().endswith("heavy:")


def test_the_report_formats_are_the_reports_own() -> None:
    assert cli.REPORT_FORMATS == FORMATS


def test_the_group_audiences_are_the_models_own() -> None:
    from csp_bot.bot.cli_groups import AUDIENCES
    from csp_bot.models.groups import Audience

    assert tuple(audience.value for audience in Audience) == AUDIENCES


def test_an_unknown_format_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["report", "--format", "pdf"])
    assert "invalid choice: 'pdf'" in capsys.readouterr().err
