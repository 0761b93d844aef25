"""Input and output serializers of the wallet API (separate for commands)."""

from rest_framework import serializers


class RegisterInput(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    display_name = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )


class LoginInput(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    otp_token = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")


class KycInput(serializers.Serializer):
    legal_name = serializers.CharField(max_length=100)
    id_number = serializers.CharField(max_length=32)
    phone = serializers.CharField(max_length=20)
    # Files are checked by apps.accounts.validation (size, really an image).
    id_front = serializers.FileField(allow_empty_file=False)
    id_back = serializers.FileField(allow_empty_file=False)


class OtpConfirmInput(serializers.Serializer):
    otp_token = serializers.CharField(max_length=16)


class PaymentPasswordInput(serializers.Serializer):
    password = serializers.CharField(max_length=16, trim_whitespace=False)
    otp_token = serializers.CharField(max_length=16)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
