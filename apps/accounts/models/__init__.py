"""The accounts models, one module per concern; every name is importable
from apps.accounts.models as before."""

from apps.accounts.models.base import (
    ROLE_CAPABILITIES,
    Membership,
    Merchant,
    OperatorPin,
    Payer,
    Role,
    Shop,
    User,
    UserManager,
)
from apps.accounts.models.credentials import ApiToken, PaymentPassword, StaffInvitation
from apps.accounts.models.identity import (
    BeneficialOwner,
    EncryptionCanary,
    IdentityDocument,
    KybApplication,
    KycApplication,
    ReviewStatusChange,
)

__all__ = [
    "ROLE_CAPABILITIES",
    "ApiToken",
    "BeneficialOwner",
    "EncryptionCanary",
    "IdentityDocument",
    "KybApplication",
    "KycApplication",
    "Membership",
    "Merchant",
    "OperatorPin",
    "Payer",
    "PaymentPassword",
    "ReviewStatusChange",
    "Role",
    "Shop",
    "StaffInvitation",
    "User",
    "UserManager",
]
