"""Mutated plan files: each is imported cleanly or refused with the importer's own error,
never a traceback, and a refused file changes nothing in the database.

A seeded generator makes the mutations (types, keys, duplicates, sizes, encodings, aliases,
nesting), so a failure names a mutation that can be made again. SQLite only: it is the
importer under test, not the database.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from csp_bot.bot.demo import EXAMPLE_PLAN
from csp_bot.models.db import Database, make_engine
from csp_bot.models.plan_checks import PlanError
from csp_bot.models.plan_import import import_plan_file
from tests.test_forged_buttons import database_rows as rows

SEED = 20211
MUTATIONS = 200
AT = datetime(2021, 6, 10, 9, 0, tzinfo=UTC)
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    10**30,
    1.5e308,
    "",
    " ",
    "x" * 5000,
    "0001-01-01T00:00+05:00",
    "9999-12-31",
    "1999-12-31",
    "£99,999,999,999",
    "²",
    "🙂" * 50,
    [],
    [1, [2, [3]]],
    {},
    {"unexpected": "key"},
    "SOC-0",
    "2021/22",
    '=HYPERLINK("http://x")',
]

Edit = Callable[[random.Random, str], bytes]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in the parsed plan."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _set(data: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _dump(data: Any) -> bytes:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's, where built: faster
    return yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False).encode()


_PARSED: dict[str, Any] = {}


def _load(text: str) -> Any:
    """The sample plan's data, parsed once (a copy each time: mutations change it)."""
    if text not in _PARSED:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _PARSED[text] = yaml.load(text, Loader=loader)
    return copy.deepcopy(_PARSED[text])


def _retype(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    _set(data, rng.choice(_paths(data)), rng.choice(ODD_VALUES))
    return _dump(data)


def _some_key(rng: random.Random, data: Any) -> tuple[dict[str, Any], str]:
    """A mapping somewhere in the plan, and one of its keys."""
    path = rng.choice([p for p in _paths(data) if isinstance(p[-1], str)])
    return _get(data, path[:-1]), path[-1]


def _drop_key(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    parent, key = _some_key(rng, data)
    del parent[key]
    return _dump(data)


def _rename_key(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    parent, key = _some_key(rng, data)
    parent[key + rng.choice(["s", "_x", "!"])] = parent.pop(key)
    return _dump(data)


def _duplicate_line(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    index = rng.randrange(len(lines))
    lines.insert(index, lines[index])
    return "\n".join(lines).encode()


def _duplicate_entry(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    lists = [p for p in _paths(data) if isinstance(_get(data, p), list) and _get(data, p)]
    path = rng.choice(lists)
    items = _get(data, path)
    items.append(items[rng.randrange(len(items))])
    return _dump(data)


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _cut(rng: random.Random, text: str) -> bytes:
    return text.encode()[: rng.randrange(len(text))]


def _bytes(rng: random.Random, text: str) -> bytes:
    raw = bytearray(text.encode())
    for _ in range(rng.randint(1, 4)):
        raw[rng.randrange(len(raw))] = rng.choice([0, 1, 7, 27, 0x7F, 0xC3, 0xFF, 0x80])
    return bytes(raw)


def _encoding(rng: random.Random, text: str) -> bytes:
    encoding = rng.choice(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"])
    return text.encode(encoding, errors="replace")


def _alias(rng: random.Random, text: str) -> bytes:
    laughs = "\n".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9))
    where = rng.choice(["title", "area", "board"])
    body = text.replace(f"  {where}:", f"  {where}: *l8\n  _{where}:", 1)
    return ("l0: &l0 lol\n" + laughs + "\n" + body).encode()


def _nesting(rng: random.Random, text: str) -> bytes:
    depth = rng.choice([20, 200, 5000])
    value = "[" * depth + "]" * depth
    return text.replace("  area:", f"  area: {value}\n  _area:", 1).encode()


def _size(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    path = rng.choice(_paths(data))
    _set(data, path, "y" * rng.choice([201, 1001, 100_000, 2_000_000]))
    return _dump(data)


def _many(rng: random.Random, text: str) -> bytes:
    data = _load(text)
    priority = data["priorities"][0]
    action = priority["actions"][0]
    copies = rng.choice([50, 300])
    priority["actions"] = [dict(action, ref=f"{priority['code']}-{n}") for n in range(1, copies)]
    return _dump(data)


EDITS: list[Edit] = [
    _retype,
    _retype,
    _retype,
    _drop_key,
    _rename_key,
    _duplicate_line,
    _duplicate_entry,
    _cut,
    _bytes,
    _encoding,
    _alias,
    _nesting,
    _size,
    _many,
]


def mutations() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    made = []
    for number in range(MUTATIONS):
        edit = rng.choice(EDITS)
        made.append((f"{number}-{edit.__name__.strip('_')}", edit(rng, text)))
    return made


@pytest.fixture
def sqlite_db(tmp_path: Path, migrated_sqlite: Path) -> Any:
    path = tmp_path / "fuzz.db"
    path.write_bytes(migrated_sqlite.read_bytes())
    database = Database(make_engine(f"sqlite:///{path}"))
    database.call(import_plan_file, path=EXAMPLE_PLAN, at=AT)
    yield database
    database.close()


def test_mutated_plans_import_cleanly_or_change_nothing(
    sqlite_db: Database, tmp_path: Path
) -> None:
    made = mutations()
    assert len(made) >= 200
    refused = 0
    before = rows(sqlite_db)
    for name, content in made:
        path = tmp_path / f"{name}.yaml"
        path.write_bytes(content)
        try:
            sqlite_db.call(import_plan_file, path=path, at=AT)
            before = rows(sqlite_db)  # only an import changes what a refusal must keep
        except PlanError as error:
            refused += 1
            assert str(error).strip(), name
            assert str(error).startswith(str(path)), (name, str(error)[:200])
            assert rows(sqlite_db) == before, name
    assert refused > len(made) // 2  # most mutations break the plan
