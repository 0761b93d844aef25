"""OpenAPI description of the terminal signing scheme (drf-spectacular)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

SCHEME_DESCRIPTION = """HTTP Message Signatures (RFC 9421) with Ed25519, both ways. See docs/terminal-api.md.

Request headers: `Content-Digest: sha-256=:…:` (RFC 9530, when there is a body),
`Signature-Input: sig=("@method" "@target-uri" ["idempotency-key"] ["content-digest"]);created=<unix s>;keyid="<terminal id>";alg="ed25519";nonce="<16-128 chars, unique>"`
and `Signature: sig=:<base64 Ed25519 signature>:`. `created` within ±300 s of the server clock; a nonce works once.

Every response (errors included) carries `Content-Digest` and
`Signature-Input: sig=("@status" "signature";req;key="sig" "content-digest");created=…;keyid="<server key id>";alg="ed25519"`:
verify it with the server's published key (activation answer / config) and refuse the answer when it does not verify."""


class TerminalSignatureScheme(OpenApiAuthenticationExtension):
    target_class = "apps.terminals.api.auth.TerminalSignatureAuthentication"
    name = "TerminalSignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Signature",
            "description": SCHEME_DESCRIPTION,
        }
