"""AUTH-04 (and the AUTH-03 fingerprint): the password the agent holds for the camera.

The check needs no camera call: it assesses the credential from the vault. Evidence holds the
length, which classes are present, the zxcvbn score and, when a site key is configured, the
keyed fingerprint the collector compares across cameras (AUTH-03 is decided there). The score
comes from the vault when the vendor and model cannot change it (no zxcvbn in the audit; see
``agent.credentials.passwords``). When the camera refused that credential, the vault holds a
wrong password: ``auth.credential_rejected`` fails (the operator must fix the vault entry) and
the policy is not judged.
"""

from __future__ import annotations

from agent.checks.base import Check, CheckContext
from agent.credentials.passwords import assess_password, fingerprint
from protocol.messages import EvidenceValue, Finding


class PasswordPolicyCheck(Check):
    id = "password-policy"
    controls = ("AUTH-04",)

    async def run(self, ctx: CheckContext) -> list[Finding]:
        if ctx.credential is None:
            return [
                self.finding(
                    ctx,
                    "auth.password_unknown",
                    "not_applicable",
                    "info",
                    reason="no credential for this camera in the vault",
                )
            ]
        if ctx.login_refused:  # the vault's password is not the camera's: nothing to judge
            return [
                self.finding(
                    ctx,
                    "auth.credential_rejected",
                    "fail",
                    "medium",
                    reason="the camera refused the vault's credential: update the vault entry",
                    evidence={"vault_entry": ctx.target.credential_ref or ""},
                )
            ]
        identity = ctx.identity
        assessment = assess_password(
            ctx.credential.password,
            user_inputs=(
                identity.vendor if identity else None,
                identity.model if identity else None,
                ctx.credential.username,
            ),
            username=ctx.credential.username,
        )
        evidence: dict[str, EvidenceValue] = {
            "length": assessment.length,
            "class_count": assessment.class_count,
            "has_upper": assessment.upper,
            "has_lower": assessment.lower,
            "has_digit": assessment.digit,
            "has_special": assessment.special,
            "score": assessment.score,
            "meets_724": assessment.meets_724,
        }
        if ctx.site_key is not None:
            print_ = fingerprint(ctx.site_key, ctx.credential.password)
            evidence |= {"fingerprint": print_.value, "fingerprint_key_id": print_.key_id}
        strong = assessment.meets_724 and assessment.score >= ctx.limits.min_password_score
        if strong:
            return [self.finding(ctx, "auth.password_policy", "pass", "info", evidence=evidence)]
        return [self.finding(ctx, "auth.weak_password", "fail", "high", evidence=evidence)]
