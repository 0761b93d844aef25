"""Human, translatable names for the codes the audit trail and the security
events store (the stored codes stay stable English identifiers; people read
these). An unknown code is shown as it is."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# Families of audit actions: the part before the first dot. The activity
# log's filter offers these.
ACTION_FAMILIES = {
    "payment": _("Payments"),
    "refund": _("Refunds"),
    "batch": _("Batch closes"),
    "terminal": _("Terminals"),
    "staff": _("Staff"),
    "otp": _("Two-step sign-in"),
    "operator_pin": _("Transaction passwords"),
    "kyb": _("Business verification"),
    "kyc": _("Identity verification"),
    "merchant": _("Merchant"),
    "ledger": _("Settlement account"),
    "risk": _("Risk review"),
    "security": _("Security"),
    "login": _("Sign-in"),
}

# A family that spans several action prefixes.
FAMILY_PREFIXES = {"staff": ("staff.", "membership."), "refund": ("refund.", "payment.refund")}


def family_prefixes(family: str) -> tuple[str, ...]:
    return FAMILY_PREFIXES.get(family, (f"{family}.",))


ACTION_LABELS = {
    "merchant.created": _("Merchant account opened"),
    "membership.added": _("Staff member added"),
    "staff.invited": _("Staff member invited"),
    "staff.invitation_accepted": _("Invitation accepted"),
    "otp.enrolment_started": _("Two-step sign-in set-up started"),
    "otp.enrolled": _("Two-step sign-in enabled"),
    "otp.backup_codes_regenerated": _("Backup codes regenerated"),
    "operator_pin.set": _("Transaction password set"),
    "kyb.submitted": _("Business verification submitted"),
    "kyb.approved": _("Business verification approved"),
    "kyb.rejected": _("Business verification rejected"),
    "kyc.submitted": _("Identity verification submitted"),
    "kyc.approved": _("Identity verification approved"),
    "kyc.rejected": _("Identity verification rejected"),
    "kyc.expired": _("Identity verification expired"),
    "terminal.registered": _("Terminal registered"),
    "terminal.activation_code_issued": _("Activation code issued"),
    "terminal.activated": _("Terminal activated"),
    "terminal.suspended": _("Terminal suspended"),
    "terminal.resumed": _("Terminal resumed"),
    "terminal.retired": _("Terminal retired"),
    "terminal.rekeyed": _("Terminal re-keyed"),
    "terminal.key_rotated": _("Terminal key rotated"),
    "terminal.operator_verified": _("Cashier signed in at a terminal"),
    "payment.created": _("Payment received"),
    "payment.completed": _("Payment completed"),
    "payment.held": _("Payment held for review"),
    "payment.declined": _("Payment declined"),
    "payment.awaiting_password": _("Payment awaiting the payer's password"),
    "payment.partially_refunded": _("Payment partly refunded"),
    "payment.refunded": _("Payment refunded"),
    "payment.reversed": _("Payment reversed"),
    "payment.returned": _("Held payment returned to the payer"),
    "refund.created": _("Refund made"),
    "batch.closed": _("Batch closed"),
    "batch.mismatch": _("Batch closed with differences"),
    "ledger.merchant_withdraw": _("Withdrawal to the bank account"),
    "ledger.account_frozen": _("Settlement account frozen"),
    "ledger.account_unfrozen": _("Settlement account unfrozen"),
    "risk.case_opened": _("Risk review opened"),
    "risk.case_approved": _("Risk review approved"),
    "risk.case_declined": _("Risk review declined"),
    "risk.hold_expired": _("Held payment expired"),
    "login.unlocked": _("Sign-in unlocked"),
}

SECURITY_EVENT_LABELS = {
    "login_lockout": _("Sign-in locked after failed attempts"),
    "otp_failed": _("Wrong two-step code"),
    "permission_denied": _("Page refused to a role"),
    "operator_pin_lockout": _("Transaction password locked"),
    "payment_password_lockout": _("Payment password locked"),
    "terminal_signature_failure": _("Terminal request with a bad signature"),
    "terminal_signature_replay": _("Replayed terminal request"),
    "terminal_suspended_burst": _("Terminal suspended after repeated failures"),
    "terminal_unusual_volume": _("Unusual terminal volume"),
}

SEVERITY_LABELS = {"info": _("info"), "warning": _("warning"), "critical": _("critical")}


def action_label(code: str) -> str:
    if code in ACTION_LABELS:
        return str(ACTION_LABELS[code])
    if code.startswith("security."):
        return security_event_label(code.removeprefix("security."))
    return code


def security_event_label(kind: str) -> str:
    return str(SECURITY_EVENT_LABELS.get(kind, kind))
