"""The control catalogue: each control camwarden checks, mapped to the regulation in force and to
the one it replaced, with the public sources of every mapping.

QCVN 11:2026/BCA (Circular 48/2026/TT-BCA of the Ministry of Public Security, in force since
1 July 2026) replaced QCVN 135:2024/BTTTT (Circular 21/2024/TT-BTTTT). Neither text's clause
numbers were found in a public source, so every mapping names a requirement GROUP, never a
clause (``clause`` is None throughout: say so rather than invent one):

- QCVN 135:2024/BTTTT: its 11 groups are listed, in order, by the press (``SOURCES``
  "tvpl-78242", "nss-32702"); the numbers G1..G10 are that order.
- QCVN 11:2026/BCA: the public summary ("bd-qcvn11") names its first four groups, in the same
  words and order as QCVN 135's (unique passwords at first use, vulnerability management, secure
  updates, secure storage of security parameters) and says "among others". Groups 1-4 are
  therefore ``named``; groups 5-10 are ``assumed`` carried over from QCVN 135:2024 in the same
  order, which no public text found confirms.

Which controls fall in which QCVN 135 group comes from the press descriptions of the groups,
read against each control's requirement (the same reading for QCVN 11 by the correspondence
above). A control with no group is required by other sources (Decree 85/Circular 12, vendor
hardening guides, Decision 724), not by the camera regulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

REGULATION_IN_FORCE: Final = "QCVN 11:2026/BCA"
REGULATION_REPLACED: Final = "QCVN 135:2024/BTTTT"
Basis = Literal["named", "assumed"]


@dataclass(frozen=True, slots=True)
class Source:
    title: str
    url: str
    supports: str


SOURCES: Final[dict[str, Source]] = {
    "bd-qcvn11": Source(
        "B&D Consultant: Ministry of Public Security issues QCVN 11:2026/BCA on cybersecurity "
        "requirements for IP surveillance cameras (2026)",
        "https://bdconsultant.com.vn/ministry-of-public-security-issues-qcvn-112026-bca-on-"
        "cybersecurity-requirements-for-ip-surveillance-cameras/",
        "Circular 48/2026/TT-BCA of 12 May 2026 issues QCVN 11:2026/BCA, in force 1 July 2026, "
        "replacing QCVN 135:2024/BTTTT; names its first requirement groups; no clause numbers",
    ),
    "tvpl-78242": Source(
        "Thư Viện Pháp Luật: 11 yêu cầu an toàn thông tin cơ bản của Camera giám sát IP từ năm "
        "2026 (14/01/2025)",
        "https://thuvienphapluat.vn/tintuc/vn/ho-tro-phap-luat/chinh-sach-moi/78242/"
        "11-yeu-cau-an-toan-thong-tin-co-ban-cua-Camera-giam-sat-IP-tu-nam-2026",
        "QCVN 135:2024/BTTTT (Circular 21/2024/TT-BTTTT) and its requirement groups, described",
    ),
    "nss-32702": Source(
        "Nhịp sống số: Từ 15/2/2025, camera giám sát ra thị trường phải theo quy chuẩn mới",
        "https://nss.vn/tu-15-2-2025--camera-giam-sat-ra-thi-truong-phai-theo-quy-chuan-moi-"
        "32702.htm",
        "the 11 requirement groups of QCVN 135:2024/BTTTT, in order",
    ),
}
# the regulations' requirement groups (names in the message catalogue: ``qcvn.group.<n>``)
GROUPS: Final = tuple(range(11))  # 0: the regulation as a whole (its certificate)
QCVN11_BASIS: Final[dict[int, Basis]] = {g: "named" if g <= 4 else "assumed" for g in GROUPS}


@dataclass(frozen=True, slots=True)
class Mapping:
    regulation: str
    group: int
    clause: str | None  # None: the clause is not known from a public text
    basis: Basis  # "named": the group is named by the sources; "assumed": see the docstring
    sources: tuple[str, ...]  # keys of SOURCES


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    in_force: tuple[Mapping, ...]  # QCVN 11:2026/BCA
    replaced: tuple[Mapping, ...]  # QCVN 135:2024/BTTTT, kept

    @property
    def mapped(self) -> bool:
        return bool(self.in_force)


# control -> requirement groups of QCVN 135:2024 (and, by the correspondence, QCVN 11:2026)
_GROUPS: Final[dict[str, tuple[int, ...]]] = {
    "INV-01": (),
    "INV-02": (0,),  # the certificate of conformity itself
    "INV-03": (),
    "INV-04": (),
    "AUTH-01": (1,),
    "AUTH-02": (1,),
    "AUTH-03": (1,),
    "AUTH-04": (1,),
    "AUTH-05": (),
    "AUTH-06": (),
    "AUTH-07": (),
    "AUTH-08": (6, 7),
    "AUTH-09": (),
    "AUTH-10": (),
    "AUTH-11": (),
    "AUTH-12": (1, 6),
    "AUTH-13": (),
    "AUTH-14": (),
    "COM-01": (5,),
    "COM-02": (5,),
    "COM-03": (4,),
    "COM-04": (5,),
    "COM-05": (),
    "COM-06": (6,),
    "COM-07": (),
    "SVC-01": (6,),
    "SVC-02": (6,),
    "SVC-03": (),
    "SVC-04": (),
    "SVC-05": (),
    "SVC-06": (7,),
    "SVC-07": (),
    "SVC-08": (),
    "SVC-09": (),
    "SVC-10": (),
    "SVC-11": (6,),
    "SVC-12": (),
    "FW-01": (2,),
    "FW-02": (3,),
    "FW-03": (3,),
    "FW-04": (),
    "FW-05": (2,),
    "FW-06": (),
    "LOG-01": (),
    "LOG-02": (),
    "LOG-03": (),
    "LOG-04": (),
    "NET-01": (),
    "NET-02": (),
    "NET-03": (),
    "DATA-01": (7, 10),
    "DATA-02": (4, 10),
    "DATA-03": (9,),
    "RES-01": (8,),
    "GOV-01": (),
    "GOV-02": (),
}


def _control(control: str, groups: tuple[int, ...]) -> Control:
    return Control(
        control,
        tuple(
            Mapping(REGULATION_IN_FORCE, g, None, QCVN11_BASIS[g], ("bd-qcvn11", "nss-32702"))
            for g in groups
        ),
        tuple(
            Mapping(REGULATION_REPLACED, g, None, "named", ("tvpl-78242", "nss-32702"))
            for g in groups
        ),
    )


CONTROLS: Final[dict[str, Control]] = {c: _control(c, g) for c, g in _GROUPS.items()}


@dataclass(frozen=True, slots=True)
class Catalogue:
    regulation_in_force: str
    regulation_replaced: str
    sources: dict[str, Source]
    controls: list[Control]


CATALOGUE: Final = Catalogue(
    REGULATION_IN_FORCE, REGULATION_REPLACED, SOURCES, list(CONTROLS.values())
)
