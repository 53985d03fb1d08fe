"""The survey never holds a credential to send: none of its modules reaches the vault, the
credential type or the probes' credential arguments, and its own requests carry no token.
(The lab's request log checks the same from the wire: test_survey_lab.)"""

from __future__ import annotations

import ast
from pathlib import Path

from agent.survey.probe import ONVIF_DEVICE_INFORMATION, ONVIF_SYSTEM_TIME

SURVEY = Path(__file__).resolve().parents[3] / "agent" / "survey"
SECRET_WORDS = ("authorization", "usernametoken", "password", "passwd", "security")


def _trees() -> list[tuple[Path, ast.AST]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(SURVEY.glob("*.py"))]


def test_the_survey_reaches_no_credential() -> None:
    banned = ("agent.trust", "agent.credentials", "agent.vendors.http")
    bad = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {a.name for a in node.names}
                if node.module.startswith(banned) or "Credential" in names:
                    bad.append(f"{path.name}: imports {node.module} {sorted(names)}")
            if isinstance(node, ast.Call):
                bad += [
                    f"{path.name}:{node.lineno} passes {k.arg}"
                    for k in node.keywords
                    if k.arg in ("credential", "basic", "auth")
                ]
    assert bad == []


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower()
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        return node.value.decode("latin-1").lower()
    return ""


def test_no_string_of_the_survey_names_a_secret() -> None:
    bad = [
        f"{path.name}:{getattr(node, 'lineno', 0)}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if any(word in _text(node) for word in SECRET_WORDS) and not _is_docstring(tree, node)
    ]
    assert bad == []


def _is_docstring(tree: ast.AST, constant: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and node.body[0].value is constant
        for node in ast.walk(tree)
    )


def test_the_onvif_requests_carry_no_ws_security() -> None:
    for body in (ONVIF_DEVICE_INFORMATION, ONVIF_SYSTEM_TIME):
        assert b"Header" not in body
        assert not any(word.encode() in body.lower() for word in SECRET_WORDS)
