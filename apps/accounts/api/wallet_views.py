"""The payer's wallet API: thin views over apps.accounts.services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.api import wallet_serializers as s
from apps.accounts.api.auth import IsPayer, WalletTokenAuthentication
from apps.accounts.models import Payer, User
from apps.accounts.otp import totp_qr_svg
from apps.accounts.validation import document_clean
from apps.core.api import ApiError


class WalletApiView(APIView):
    authentication_classes = [WalletTokenAuthentication]
    permission_classes = [IsPayer]

    @property
    def payer(self) -> Payer:
        return self.request.user.payer

    def valid(self, serializer_class: type, data: Any = None) -> dict:
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


def _token_response(user: User, request: Any, status_code: int = 200) -> Response:
    record, token = services.api_token_issue(user=user, request=request)
    return Response(
        {"token": token, "expires_at": record.expires_at, "payer": str(user.payer.public_id)},
        status=status_code,
    )


class RegisterApi(WalletApiView):
    """Creates a payer's account and returns its first token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.RegisterInput, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = self.valid(s.RegisterInput)
        payer = services.payer_register(
            email=data["email"],
            password=data["password"],
            display_name=data["display_name"],
            request=request,
        )
        return _token_response(payer.user, request, status.HTTP_201_CREATED)


class LoginApi(WalletApiView):
    """Email + password (+ a current OTP code once enrolled) → a token.
    The login lockout applies as on the portal."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.LoginInput, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = self.valid(s.LoginInput)
        try:
            user = authenticate(request._request, username=data["email"], password=data["password"])
        except DjangoPermissionDenied:
            user = None
        if user is None:
            locked = User.objects.filter(email=data["email"].strip().lower()).first()
            if locked is not None and services.login_is_locked(locked):
                raise ApiError(
                    "login_locked",
                    "Too many failed sign-ins; the account is locked for a while.",
                    status_code=423,
                )
            raise ApiError(
                "invalid_credentials", "The email or password is wrong.", status_code=401
            )
        if not hasattr(user, "payer"):
            raise ApiError("not_a_payer", "This account has no wallet.", status_code=403)
        if services.otp_has_device(user):
            if not data["otp_token"]:
                raise ApiError(
                    "otp_required",
                    "Enter the code from your authenticator app.",
                    status_code=401,
                    param="otp_token",
                )
            if services.otp_verify(user=user, token=data["otp_token"], request=request) is None:
                # A wrong second factor counts towards the lockout like a wrong password.
                services.login_failure_record(user=user, request=request)
                raise ApiError(
                    "otp_invalid",
                    "That one-time code is wrong or expired.",
                    status_code=401,
                    param="otp_token",
                )
        services.login_success_record(user=user)
        return _token_response(user, request)


class LogoutApi(WalletApiView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.api_token_revoke(token=request.auth, actor=request.user, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StatusApi(WalletApiView):
    """The wallet's verification and security state."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(selectors.payer_status(payer=self.payer))


class KycApi(WalletApiView):
    """GET: the latest KYC's status. POST (multipart): submit legal name, ID
    number, phone and the ID card's front and back images."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(selectors.payer_status(payer=self.payer)["kyc"])

    @extend_schema(
        request={"multipart/form-data": s.KycInput}, responses={201: OpenApiTypes.OBJECT}
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.KycInput)
        person = services.person_clean(
            legal_name=data["legal_name"],
            id_number=data["id_number"],
            phone=data["phone"],
            id_front=document_clean(data["id_front"], field="id_front"),
            id_back=document_clean(data["id_back"], field="id_back"),
        )
        kyc = services.payer_kyc_submit(payer=self.payer, person=person, request=request)
        return Response(
            {"id": str(kyc.public_id), "status": kyc.status}, status=status.HTTP_201_CREATED
        )


class OtpEnrolApi(WalletApiView):
    """Starts TOTP enrolment: the otpauth URI and its QR code as SVG."""

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        device = services.otp_enrol_start(user=request.user, request=request)
        return Response(
            {"otpauth_uri": device.config_url, "qr_svg": totp_qr_svg(device)},
            status=status.HTTP_201_CREATED,
        )


class OtpConfirmApi(WalletApiView):
    """Confirms enrolment with a code; answers the backup codes, once."""

    @extend_schema(request=s.OtpConfirmInput, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        data = self.valid(s.OtpConfirmInput)
        _device, codes = services.otp_enrol_confirm(
            user=request.user, token=data["otp_token"], request=request
        )
        return Response({"confirmed": True, "backup_codes": codes})


class PaymentPasswordApi(WalletApiView):
    """Sets or changes the 6-digit payment password; needs a current OTP code."""

    @extend_schema(request=s.PaymentPasswordInput, responses={200: OpenApiTypes.OBJECT})
    def put(self, request: Request) -> Response:
        data = self.valid(s.PaymentPasswordInput)
        if not services.otp_has_device(request.user):
            raise ApiError("otp_not_enrolled", "Set up an authenticator first.", status_code=403)
        services.payment_password_set(
            payer=self.payer,
            password=data["password"],
            otp_token=data["otp_token"],
            request=request,
        )
        return Response({"payment_password_set": True})

    post = put


class PaymentCodeApi(WalletApiView):
    """A single-use payment code valid 60 s, for the cashier to scan."""

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        from apps.transactions.services import payment_code_issue

        if self.payer.account_class == Payer.AccountClass.UNVERIFIED:
            raise ApiError(
                "kyc_required", "Complete real-name verification before paying.", status_code=403
            )
        code = payment_code_issue(payer=self.payer)
        return Response(
            {"code": code.code, "expires_at": code.expires_at}, status=status.HTTP_201_CREATED
        )
