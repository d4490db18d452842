"""Chinese is the default language: every string has a translation, and the pages really use it."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.test import Client
from django.urls import reverse
from django.utils import translation

REPO = Path(__file__).resolve().parents[2]
# What makemessages scans: the code and templates that ship, never the virtualenv, var/ or the tests.
SOURCES = (
    "consult", "medical", "legal", "realtime", "jobs", "notices", "accounts", "staff", "privacy", "templates", "static",
    "locale",
    "manage.py",
)
CATALOGUE = Path("locale") / "zh_Hans" / "LC_MESSAGES" / "django.po"
# Variables that would leak the outer test run's configuration into the child.
OUTER = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL", "REDIS_URL",
         "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "DJANGO_SETTINGS_MODULE")

HEADLINE_EN = "Get help from a city doctor or a union lawyer"
HEADLINE_ZH = "请城里的医生或工会律师帮您"


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file, header included (msgid ""). Enough of the format for makemessages' output."""
    entries: list[Entry] = []
    entry = Entry()
    target: str | None = None  # the keyword the next continuation line belongs to
    started = False

    def finish() -> None:
        nonlocal entry, target, started
        if started:
            entries.append(entry)
        entry, target, started = Entry(), None, False

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = started = True
            continue
        if line.startswith("#,"):
            if started:  # flags open a new entry when no blank line separates them
                finish()
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            if started:
                finish()
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            keyword, rest = "", line
        if keyword == "msgid" and started:
            finish()
        value = ast.literal_eval(rest) if rest else ""
        if keyword == "":
            assert target is not None, f"continuation line without a keyword: {raw!r}"
        else:
            target = keyword
            started = True
            if keyword.startswith("msgstr"):
                entry.msgstrs.append("")
            elif keyword == "msgid_plural":
                entry.msgid_plural = ""
        if target == "msgid":
            entry.msgid += value
        elif target == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + value
        elif target is not None and target.startswith("msgstr"):
            entry.msgstrs[-1] += value
    finish()
    return entries


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTER}
    env["DJANGO_SETTINGS_MODULE"] = "consult.settings"
    return env


def test_the_parser_sees_fuzzy_plural_and_empty_entries() -> None:
    entries = parse_po(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#: a.py:1\n#, fuzzy, python-format\nmsgid "%(n)d day"\nmsgid_plural "%(n)d days"\nmsgstr[0] "%(n)d 天"\n\n'
        '#: a.py:2\nmsgid ""\n"Long "\n"text"\nmsgstr ""\n\n'
        '#~ msgid "Gone"\n#~ msgstr "没了"\n'
    )
    header, day, long, gone = entries
    assert header.msgid == "" and header.msgstrs == ["Language: zh_Hans\n"]
    assert day.msgid_plural == "%(n)d days" and day.msgstrs == ["%(n)d 天"] and "fuzzy" in day.flags
    assert long.msgid == "Long text" and long.msgstrs == [""]
    assert gone.obsolete


def test_it_has_a_chinese_translation_for_every_string(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    copy.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            shutil.copy2(source, copy / name)

    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete"],
        cwd=copy, env=_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, f"makemessages failed:\n{result.stdout}\n{result.stderr}"

    entries = parse_po((copy / CATALOGUE).read_text(encoding="utf-8"))
    header = next(e for e in entries if e.msgid == "" and not e.obsolete)
    messages = [e for e in entries if e.msgid and not e.obsolete]
    assert len(messages) > 100, f"only {len(messages)} strings found: did makemessages scan the copy?"

    assert "Language: zh_Hans" in header.msgstrs[0]
    assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstrs[0]
    assert "charset=UTF-8" in header.msgstrs[0]

    untranslated = [e.msgid for e in messages if not e.msgstrs or any(not s.strip() for s in e.msgstrs)]
    fuzzy = [e.msgid or "(header)" for e in entries if "fuzzy" in e.flags and not e.obsolete]
    assert not untranslated, (
        f"{len(untranslated)} strings have no Chinese in {CATALOGUE} (run makemessages and translate them):\n"
        + "\n".join(untranslated)
    )
    assert not fuzzy, f"{len(fuzzy)} fuzzy entries in {CATALOGUE} (check and unflag them):\n" + "\n".join(fuzzy)


def test_the_committed_catalogue_is_complete_and_keeps_its_placeholders() -> None:
    entries = parse_po((REPO / CATALOGUE).read_text(encoding="utf-8"))
    placeholder = re.compile(r"%\([a-z_]+\)[sd]")
    wrong: list[str] = []
    for e in entries:
        if not e.msgid:
            continue
        expected = sorted(placeholder.findall(e.msgid_plural or e.msgid))
        if e.msgid_plural is not None and len(e.msgstrs) != 1:
            wrong.append(f"{e.msgid!r}: Chinese has one plural form, found {len(e.msgstrs)}")
        for text in e.msgstrs:
            if sorted(placeholder.findall(text)) != expected:
                wrong.append(f"{e.msgid!r} -> {text!r}")
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_the_compiled_catalogue_is_in_use() -> None:
    with translation.override("zh-hans"):
        assert translation.gettext(HEADLINE_EN) == HEADLINE_ZH
        assert translation.gettext("Waiting in line") == "排队中"
        assert translation.gettext("Take the next case") == "接下一个咨询"
        assert translation.ngettext("%(n)d day", "%(n)d days", 3) % {"n": 3} == "3 天"
        assert translation.gettext("Your case has been received. Its reference is %(ref)s.") % {
            "ref": "M-2026-0001"
        } == "我们已收到您的咨询，编号是 M-2026-0001。"
    with translation.override("en"):
        assert translation.gettext(HEADLINE_EN) == HEADLINE_EN


def _label(html: str, field_id: str) -> str:
    match = re.search(rf'<label for="{field_id}">(.*?)</label>', html)
    assert match, f"no label for {field_id} in the page"
    return match.group(1)


def test_pages_are_in_chinese_by_default_and_in_english_on_request(db: Any) -> None:
    home_zh = Client().get(reverse("home"))
    home_en = Client(HTTP_ACCEPT_LANGUAGE="en").get(reverse("home"))
    assert home_zh.status_code == home_en.status_code == 200
    zh, en = home_zh.content.decode(), home_en.content.decode()
    assert '<html lang="zh-hans">' in zh
    assert HEADLINE_ZH in zh and HEADLINE_EN not in zh
    assert "乡镇咨询服务" in zh and "登录" in zh
    assert '<html lang="en">' in en
    assert HEADLINE_EN in en and HEADLINE_ZH not in en
    assert "Township Consultation Service" in en

    login_zh = Client().get(reverse("login")).content.decode()
    login_en = Client(HTTP_ACCEPT_LANGUAGE="en").get(reverse("login")).content.decode()
    assert _label(login_zh, "id_username").startswith("手机号")
    assert _label(login_zh, "id_password").startswith("密码")
    assert _label(login_en, "id_username").startswith("Mobile phone")
    assert "还没有账号？" in login_zh and "No account yet?" in login_en
