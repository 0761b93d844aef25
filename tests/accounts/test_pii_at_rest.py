"""PII is encrypted at rest, found by blind index, and a wrong key fails loudly."""

import cryptography.fernet
import encrypted_model_fields.fields as emf
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.accounts.crypto import FieldKeyMismatch, blind_index, field_key_verify
from apps.accounts.models import IdentityDocument, KycApplication
from apps.accounts.services import payer_kyc_submit
from apps.accounts.testdata import generated_id_number, generated_png
from tests.accounts.factories import PayerFactory
from tests.accounts.helpers import person


@pytest.fixture
def kyc(db):
    return payer_kyc_submit(payer=PayerFactory(), person=person(7, legal_name="测试赵六"))


@pytest.fixture
def other_key(settings):
    """Swaps the library's crypter as a restart with another key would."""
    original = emf.CRYPTER

    def use(*keys):
        emf.CRYPTER = cryptography.fernet.MultiFernet([cryptography.fernet.Fernet(k) for k in keys])

    yield use
    emf.CRYPTER = original


def test_pii_is_not_readable_in_the_database_table(kyc):
    number = generated_id_number(7)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT legal_name, id_number, phone, id_number_index FROM accounts_kycapplication WHERE id = %s",
            [kyc.pk],
        )
        name, id_number, phone, index = cursor.fetchone()
        cursor.execute(
            "SELECT ciphertext FROM accounts_identitydocument WHERE kyc_id = %s", [kyc.pk]
        )
        documents = [bytes(row[0]) for row in cursor.fetchall()]
    raw = f"{name}{id_number}{phone}{index}"
    assert number not in raw
    assert number[-6:] not in raw
    assert "测试赵六" not in raw
    assert "赵六" not in raw
    assert index == blind_index("id_number", number)
    assert index != number
    assert documents
    assert all(b"PNG" not in d for d in documents)
    # Through the model, the values read back in clear.
    fresh = KycApplication.objects.get(pk=kyc.pk)
    assert fresh.id_number == number
    assert fresh.legal_name == "测试赵六"


def test_the_blind_index_depends_on_the_key(settings):
    before = blind_index("id_number", "110101199003070054")
    settings.BLIND_INDEX_KEY = "another-key"
    assert blind_index("id_number", "110101199003070054") != before


def test_a_wrong_field_key_fails_loudly_instead_of_returning_ciphertext(kyc, other_key):
    field_key_verify()  # writes the canary with the right key
    other_key(cryptography.fernet.Fernet.generate_key())
    with pytest.raises(FieldKeyMismatch, match="FIELD_ENCRYPTION_KEY"):
        KycApplication.objects.get(pk=kyc.pk)
    with pytest.raises(FieldKeyMismatch):
        field_key_verify()
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEY"):
        call_command("check_field_key")


def test_the_system_check_reports_a_wrong_key_as_critical(kyc, other_key):
    from apps.accounts.checks import field_key_check

    field_key_verify()
    assert field_key_check(None, databases=["default"]) == []
    other_key(cryptography.fernet.Fernet.generate_key())
    [problem] = field_key_check(None, databases=["default"])
    assert problem.id == "accounts.E001"


def test_key_rotation_re_encrypts_everything_with_the_new_key(kyc, other_key, settings):
    field_key_verify()
    old = settings.FIELD_ENCRYPTION_KEY
    new = cryptography.fernet.Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [new, old]
    other_key(new, old)
    call_command("rotate_field_key")
    # The new key alone now reads every row, the documents and the canary.
    settings.FIELD_ENCRYPTION_KEY = new
    other_key(new)
    call_command("rotate_field_key", "--verify")
    assert KycApplication.objects.get(pk=kyc.pk).id_number == generated_id_number(7)
    doc = IdentityDocument.objects.filter(kyc=kyc).first()
    assert cryptography.fernet.Fernet(new).decrypt(bytes(doc.ciphertext)) == generated_png()
    field_key_verify()
    # And the old key alone no longer does.
    other_key(old)
    with pytest.raises(FieldKeyMismatch):
        KycApplication.objects.get(pk=kyc.pk)


def test_rotation_refuses_to_run_with_a_single_key(db):
    with pytest.raises(CommandError, match="new,old"):
        call_command("rotate_field_key")
