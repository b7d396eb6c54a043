"""A member's data export as files: the JSON the data protection officer keeps, and a page
the person can read. Both are drawn from one `models.rights.export_member` result."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from csp_bot.handlers.templating import Templates
from csp_bot.models.errors import DomainError

# Section titles in the order the page shows them, as a person would name them.
SECTIONS = {
    "role_history": "Membership: organisation, role and access over time",
    "progress_updates": "Progress updates and notes you wrote",
    "figures_sent": "Figures you sent for the plan's measures",
    "meeting_replies": "Replies to board meetings",
    "reminder_settings": "Reminder settings",
    "check_in_snoozes": "Check-in prompts you put off",
    "actions_owned": "Actions you are named as owner of",
    "absences": "Times you were away, and times you covered for someone",
    "invites_used": "Invites you joined with",
    "reminders": "Reminders sent or due to you",
    "open_drafts": "Unfinished updates and forms",
    "messages_held": "Your messages still held by the bot (kept a few days)",
    "audit_entries": "Audit trail: changes you made, and changes to your membership",
}


def export_paths(out: Path) -> tuple[Path, Path]:
    """The JSON file and the page beside it: `dan.json` gives `dan.json` and `dan.html`."""
    stem = out.with_suffix("") if out.suffix.lower() in (".json", ".html") else out
    return stem.with_suffix(".json"), stem.with_suffix(".html")


def export_page(data: dict[str, Any], templates: Templates) -> str:
    """The readable page: the profile, then every section as a table."""
    template = templates.paper.get_template("member_export.html")
    sections = [(title, *_rows(data.get(key))) for key, title in SECTIONS.items()]
    return template.render(profile=data["profile"], at=data["exported_at"], sections=sections)


def _rows(value: Any) -> tuple[list[str], list[list[str]]]:
    """A section as a table: its columns (every key any record has, in order) and rows."""
    if value is None:
        return [], []
    items = value if isinstance(value, list) else [value]
    records = [item if isinstance(item, dict) else {"value": item} for item in items]
    columns = list(dict.fromkeys(key for record in records for key in record))
    return columns, [[_text(record.get(key)) for key in columns] for record in records]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def write_export(data: dict[str, Any], page: str, out: Path) -> tuple[Path, Path]:
    """Write both files, or neither: each goes to a temporary file first, then into place."""
    json_path, html_path = export_paths(out)
    contents = {
        json_path: json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n",
        html_path: page,
    }
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in contents.items():
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
            staged.append((temporary, path))
    except OSError as problem:
        for temporary, _ in staged:
            os.unlink(temporary)
        raise DomainError(f"cannot write {out}: {problem.strerror}") from None
    for temporary, path in staged:
        os.replace(temporary, path)
    return json_path, html_path
