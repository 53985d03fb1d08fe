"""Compliance report export time for a province of 100 information systems (prints figures).

Seeds a province of 10 agencies with 10 information systems each (one site per system, 5 agents
of 10 cameras, 10 findings per camera: 5,000 cameras, 50,000 findings; bench/dashboard.py's
seeding), gives every system a security-level record, then times building the report and
writing it in each format, as the API does (figures from the scoped layer included). Runs on
SQLite, and on PostgreSQL when CAMWARDEN_TEST_PG (or the default local server) answers.

    python bench/report_export.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.dashboard import on_both_databases, seed
from server.config import WebConfig
from server.domain.orgs import Orgs, SecurityRecord
from server.domain.reports import Reports
from server.domain.scope import CLI, Scope
from server.reports import compliance as reports
from server.reports import document
from server.storage import Repository
from server.web.i18n import Catalogue

ZONE = WebConfig().zone()  # the collector's default, as the seeded units set none

FORMATS: tuple[reports.Format, ...] = ("pdf", "docx", "csv", "csv-summary")
HEAD = document.Letterhead(
    issuing_body="Sở Khoa học và Công nghệ",
    governing_body="UBND tỉnh",
    number="125/BC-SKHCN",
    place="Hà Giang",
    addressee="Bộ Công an",
    recipients=("Như trên",),
    signer_title="Giám đốc",
    signer_name="Nguyễn Văn A",
)


def run(url: str, rounds: int) -> None:
    repo = Repository.open(url)
    try:
        repo.migrate()
        seed(repo, systems_per_agency=10, sites_per_system=1, agents_per_site=5)
        s = Scope(repo, CLI, silent_after=timedelta(minutes=15), now=datetime.now(UTC))
        orgs = Orgs(s)
        systems = [v.id for v in orgs.systems()]
        for i, system in enumerate(systems):
            record = SecurityRecord("ND331_TCVN14423", 2 + i % 2, f"{i}/QĐ-UBND",
                                    date(2026, 8, 1), "full", date(2027, 8, 1))  # fmt: skip
            orgs.set_security_record(system, record)
        province = next(o.id for o in orgs.org_tree() if o.kind == "province")
        catalogue = Catalogue.load()
        today = s.today
        print(f"  {len(systems)} information systems")
        for fmt in FORMATS:
            times, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                report = reports.build(
                    Reports(s).report_data(province, today - timedelta(days=90), today)
                )
                listed = orgs.systems() if fmt in ("pdf", "docx") else []
                body = document.render(
                    report, listed, HEAD, catalogue, lang="vi", fmt=fmt, zone=ZONE
                )
                times.append((time.perf_counter() - started) * 1000)
                size = len(body)
            print(f"  {fmt:<12} median {statistics.median(times):7.1f} ms  max {max(times):7.1f} ms"
                  f"  {size / 1024:7.1f} KiB")  # fmt: skip
    finally:
        repo.close()


def main() -> None:
    on_both_databases(run, int(sys.argv[1]) if len(sys.argv) > 1 else 5)


if __name__ == "__main__":
    main()
