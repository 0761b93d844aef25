"""OpenAPI description of the wallet's bearer tokens."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class WalletTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.api.auth.WalletTokenAuthentication"
    name = "walletToken"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A wallet token from POST /api/v1/wallet/login",
        }
