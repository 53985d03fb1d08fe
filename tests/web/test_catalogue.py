"""The message catalogue: both languages complete for the interface, fallbacks for findings."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from protocol.commands import REASONS
from server.storage import Repository
from server.storage.models import Base
from server.storage.org_models import OrgUnit
from server.web.i18n import Catalogue

TEMPLATES = Path(__file__).resolve().parents[2] / "server" / "web" / "templates"


def test_interface_is_complete_in_both_languages() -> None:
    c = Catalogue.load()
    # English alone has singular forms (".one"); Vietnamese nouns have no plural
    assert c.ui_keys("vi") == {k for k in c.ui_keys("en") if not k.endswith(".one")}
    used = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(
            re.findall(r"""(?<![A-Za-z_])t\(["']([a-z_.]*[a-z])["']""", template.read_text("utf-8"))
        )
    assert used - c.ui_keys("en") == set()


def test_finding_texts_and_fallbacks() -> None:
    c = Catalogue.load()
    assert c.finding_codes("vi") <= c.finding_codes("en")
    evidence = {"entry": "hikvision-12345", "account": "admin", "interface": "onvif"}
    vi = c.finding("vi", "auth.default_credential", evidence)
    assert vi.translated
    assert vi.title == (
        "Camera chấp nhận mật khẩu mặc định: hikvision-12345 (tài khoản admin) qua onvif"
    )
    # a code only the English catalogue describes: its English text, marked as not translated
    english = Catalogue(
        {"vi": {}, "en": {"findings": {"new.code": {"title": "New thing on {port}"}}}}
    )
    fallback = english.finding("vi", "new.code", {"port": 23})
    assert (fallback.title, fallback.translated) == ("New thing on 23", False)
    unknown = c.finding("vi", "new.code", {}, reason="agent says so")
    assert unknown.title == "agent says so"
    assert unknown.advice is None


def test_migrations_match_the_models(repo: Repository) -> None:
    assert OrgUnit.metadata is Base.metadata
    with repo.engine.connect() as conn:

        def include(obj: object, name: str | None, kind: str, *_: object) -> bool:
            # an expression index migration 0003 adds on PostgreSQL only, not on the models
            return not (kind == "index" and name == "ix_findings_list")

        context = MigrationContext.configure(conn, opts={"include_object": include})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_recorder_refusals_of_a_rotation_in_both_languages() -> None:
    """Every reason code of a rotation the camera's recorder stopped has its text in both
    languages (the Vietnamese one with its diacritics, not the English one)."""
    c = Catalogue.load()
    codes = sorted(r for r in REASONS if r.startswith("recorder_"))
    assert len(codes) == 6
    for code in codes:
        key = f"command.reason.{code}"
        vi, en = c.t("vi", key), c.t("en", key)
        assert key not in (vi, en)
        assert vi != en
        assert "đầu ghi" in vi.lower()
        assert "recorder" in en.lower()
