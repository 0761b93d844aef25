"""Input and output serializers of the terminal API (inputs validate, outputs
document the schema; views build outputs from selectors)."""

from __future__ import annotations

from rest_framework import serializers


class ActivateInput(serializers.Serializer):
    activation_code = serializers.CharField(max_length=32)
    public_key = serializers.CharField(
        max_length=64, help_text="base64 of the terminal's raw 32-byte Ed25519 public key"
    )


class ServerKeyOutput(serializers.Serializer):
    key_id = serializers.CharField()
    alg = serializers.CharField()
    public_key = serializers.CharField(help_text="base64 of the raw 32-byte public key")


class ServerKeysOutput(serializers.Serializer):
    signing = ServerKeyOutput(many=True, help_text="Response-signing keys, current first")
    encryption = ServerKeyOutput(many=True, help_text="Sealed-box keys for secrets, current first")


class ActivateOutput(serializers.Serializer):
    terminal_id = serializers.UUIDField(help_text="The keyid of every request this terminal signs")
    merchant = serializers.DictField()
    shop = serializers.DictField()
    server_keys = ServerKeysOutput()
    server_time = serializers.DateTimeField()


class PingOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    terminal_id = serializers.UUIDField(required=False)
    server_time = serializers.DateTimeField()


class OperatorRecordOutput(serializers.Serializer):
    operator_id = serializers.UUIDField()
    name = serializers.CharField()
    role = serializers.CharField()
    algorithm = serializers.CharField(
        help_text="pbkdf2-sha256: verifier = base64(PBKDF2-HMAC-SHA256(pin, salt, iterations, 32))"
    )
    salt = serializers.CharField(help_text="base64")
    iterations = serializers.IntegerField()
    verifier = serializers.CharField(help_text="base64")
    set_at = serializers.DateTimeField()
    locked = serializers.BooleanField()


class ConfigOutput(serializers.Serializer):
    terminal = serializers.DictField()
    merchant = serializers.DictField()
    shop = serializers.DictField()
    business_hours = serializers.DictField()
    operators = OperatorRecordOutput(many=True)
    limits = serializers.DictField()
    server_keys = ServerKeysOutput()
    server_time = serializers.DateTimeField()


class KeyRotateInput(serializers.Serializer):
    public_key = serializers.CharField(max_length=64)


class KeyRotateOutput(serializers.Serializer):
    key_created_at = serializers.DateTimeField()
    previous_keys_valid_until = serializers.DateTimeField()


class OperatorSignInInput(serializers.Serializer):
    operator_id = serializers.UUIDField()
    pin_sealed = serializers.CharField(
        max_length=512,
        help_text="base64 sealed box of the 6-digit PIN to the server's current encryption key",
    )


class OperatorSignInOutput(serializers.Serializer):
    operator_id = serializers.UUIDField()
    name = serializers.CharField()
    role = serializers.CharField()


class HeartbeatInput(serializers.Serializer):
    latitude = serializers.DecimalField(max_digits=9, decimal_places=6, min_value=-90, max_value=90)
    longitude = serializers.DecimalField(
        max_digits=9, decimal_places=6, min_value=-180, max_value=180
    )


class HeartbeatOutput(serializers.Serializer):
    distance_from_shop_m = serializers.FloatField()
    within_bind_radius = serializers.BooleanField()
    server_time = serializers.DateTimeField()
