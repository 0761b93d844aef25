"""Refusals of the risk services, each with a stable code (docs/api-errors.md, "Risk")."""

from __future__ import annotations


class RiskError(Exception):
    code = "risk_error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__doc__ or self.code)


class ReasonRequired(RiskError):
    """A decision on a case needs a reason."""

    code = "risk_reason_required"


class CaseNotOpen(RiskError):
    """The case was already decided."""

    code = "risk_case_not_open"


class CaseLocked(RiskError):
    """Another reviewer is reviewing this case."""

    code = "risk_case_locked"


class CaseNotClaimed(RiskError):
    """Claim (lock) the case before deciding it."""

    code = "risk_case_not_claimed"


class SecondApproverRequired(RiskError):
    """Above the second-approver amount, a different reviewer must approve too."""

    code = "risk_second_approver_required"


class InvalidRuleConfig(RiskError):
    """The rule configuration is not valid."""

    code = "risk_invalid_rule_config"
