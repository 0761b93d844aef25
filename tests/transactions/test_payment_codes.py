import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.models import Payer
from apps.transactions.errors import (
    PayerNotVerified,
    PaymentCodeExpired,
    PaymentCodeUnknown,
    PaymentCodeUsed,
)
from apps.transactions.models import PaymentCode
from apps.transactions.services import (
    PAYMENT_CODE_PREFIX,
    payment_code_consume,
    payment_code_hash,
    payment_code_issue,
    payment_code_purge_expired,
)
from tests.accounts.factories import PayerFactory


@pytest.mark.django_db
def test_a_payment_code_is_18_digits_valid_for_60_seconds_and_stored_only_as_a_keyed_hash():
    payer = PayerFactory()

    issued = payment_code_issue(payer=payer)

    assert re.fullmatch(r"\d{18}", issued.code)
    assert issued.code.startswith(PAYMENT_CODE_PREFIX)
    stored = PaymentCode.objects.get(pk=issued.pk)
    assert stored.code == ""
    assert stored.code_hash == payment_code_hash(issued.code) != issued.code
    assert issued.code not in stored.code_hash
    assert stored.expires_at - stored.created_at == timedelta(seconds=60)
    assert payment_code_issue(payer=payer).code != issued.code


@pytest.mark.django_db
def test_a_payment_code_pays_once():
    payer = PayerFactory()
    code = payment_code_issue(payer=payer).code

    assert payment_code_consume(code=code) == payer
    with pytest.raises(PaymentCodeUsed):
        payment_code_consume(code=code)


@pytest.mark.django_db
def test_an_expired_payment_code_is_refused():
    payer = PayerFactory()
    issued = payment_code_issue(payer=payer)
    PaymentCode.objects.filter(pk=issued.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(PaymentCodeExpired):
        payment_code_consume(code=issued.code)


@pytest.mark.django_db
def test_an_unknown_payment_code_is_refused():
    payment_code_issue(payer=PayerFactory())
    with pytest.raises(PaymentCodeUnknown):
        payment_code_consume(code="290000000000000000")


@pytest.mark.django_db
def test_an_unverified_payer_gets_no_payment_code():
    payer = PayerFactory(account_class=Payer.AccountClass.UNVERIFIED)
    with pytest.raises(PayerNotVerified):
        payment_code_issue(payer=payer)
    assert not PaymentCode.objects.exists()


@pytest.mark.django_db
def test_a_code_of_a_payer_who_lost_verification_is_refused_and_stays_unspent():
    payer = PayerFactory()
    code = payment_code_issue(payer=payer).code
    Payer.objects.filter(pk=payer.pk).update(account_class=Payer.AccountClass.UNVERIFIED)

    with pytest.raises(PayerNotVerified):
        payment_code_consume(code=code)
    assert PaymentCode.objects.get().consumed_at is None


@pytest.mark.django_db
def test_purging_removes_only_long_expired_codes():
    payer = PayerFactory()
    old = payment_code_issue(payer=payer)
    fresh = payment_code_issue(payer=payer)
    PaymentCode.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=2))

    assert payment_code_purge_expired() == 1
    assert list(PaymentCode.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_code_presented_by_10_terminals_at_once_pays_exactly_once():
    payer = PayerFactory()
    code = payment_code_issue(payer=payer).code
    barrier = threading.Barrier(10)
    outcomes: list[object] = []
    lock = threading.Lock()

    def terminal():
        try:
            barrier.wait()
            try:
                result: object = payment_code_consume(code=code)
            except PaymentCodeUsed as exc:
                result = exc
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=terminal) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [o for o in outcomes if isinstance(o, Payer)] == [payer]
    assert sum(isinstance(o, PaymentCodeUsed) for o in outcomes) == 9


@pytest.mark.django_db
def test_the_periodic_purge_task_prunes_and_records_its_run():
    from apps.core.models import ScheduledRun
    from apps.transactions.tasks import payment_codes_purge

    issued = payment_code_issue(payer=PayerFactory())
    PaymentCode.objects.filter(pk=issued.pk).update(expires_at=timezone.now() - timedelta(days=3))

    assert payment_codes_purge.delay().get() == 1
    assert ScheduledRun.objects.filter(name="payment_codes_purge").exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_on_postgresql_a_good_code_is_spent_and_its_payer_read_in_one_round_trip():
    from django.test.utils import CaptureQueriesContext

    payer = PayerFactory()
    code = payment_code_issue(payer=payer).code

    with CaptureQueriesContext(connection) as queries:
        spent_by = payment_code_consume(code=code)

    assert len(queries.captured_queries) == 1
    assert spent_by == payer
    assert spent_by.account_class == payer.account_class
    assert PaymentCode.objects.get(code_hash=payment_code_hash(code)).consumed_at is not None
