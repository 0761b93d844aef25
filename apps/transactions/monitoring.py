"""24-hour balance monitoring of the ledger (DESIGN.md §7).

Every check is one set-based SQL statement over the ledger tables, so a run
costs a few scans whatever the number of accounts, and each statement sees
one consistent snapshot while payments keep running. A finding never
corrects anything: a drifted account is frozen, a case opens and compliance
is alerted (apps.risk); people decide.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Merchant
from apps.core.models import ScheduledRun
from apps.risk.models import BalanceWatch, MonitorRun, RiskCase
from apps.risk.monitoring import BALANCE_MONITOR
from apps.risk.services import alert_raise, risk_case_open
from apps.transactions.models import AccountKind, LedgerAccount, Posting
from apps.transactions.services import ledger_account_freeze

logger = logging.getLogger(__name__)


def _tables() -> dict[str, str]:
    return {"account": LedgerAccount._meta.db_table, "posting": Posting._meta.db_table}


def ledger_scan() -> tuple[list[tuple[int, str, str, int, int]], list[tuple[str, int]]]:
    """One statement, one pass over the postings: (drifts, currency sums).
    Drifts are (account id, public id, kind, cached balance, postings sum)
    of every account whose cached balance differs from the sum of its
    postings; currency sums are the currencies whose postings do not sum to
    zero. Both come from the same per-account sums, so one snapshot."""
    t = _tables()
    sql = (
        f"WITH s AS (SELECT account_id, SUM(amount) AS total FROM {t['posting']} GROUP BY account_id), "  # noqa: S608
        f"j AS (SELECT a.id, a.public_id, a.kind, a.currency, a.balance, COALESCE(s.total, 0) AS total "
        f"FROM {t['account']} a LEFT JOIN s ON s.account_id = a.id) "
        "SELECT 'drift', id, public_id, kind, currency, balance, total FROM j WHERE balance <> total "
        "UNION ALL "
        "SELECT 'sum', NULL, NULL, NULL, currency, NULL, SUM(total) FROM j GROUP BY currency HAVING SUM(total) <> 0"
    )
    drifts, sums = [], []
    with connection.cursor() as cursor:
        cursor.execute(sql)
        for row_type, account_id, public_id, kind, currency, balance, total in cursor.fetchall():
            if row_type == "drift":
                drifts.append((account_id, str(public_id), kind, int(balance), int(total)))
            else:
                sums.append((currency, int(total)))
    drifts.sort()
    return drifts, sums


def negative_balances() -> list[tuple[int, str, str, int]]:
    t = _tables()
    kinds = [
        AccountKind.PAYER_WALLET.value,
        AccountKind.MERCHANT_SETTLEMENT.value,
        AccountKind.RISK_HOLD.value,
    ]
    sql = (
        f"SELECT id, public_id, kind, balance FROM {t['account']} "  # noqa: S608
        "WHERE kind IN (%s, %s, %s) AND balance < 0 ORDER BY id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, kinds)
        return [(r[0], str(r[1]), r[2], int(r[3])) for r in cursor.fetchall()]


def balance_swings() -> list[tuple[int, int, int, int]]:
    """(account id, previous balance, balance, typical change) of accounts
    whose balance moved far more since the last run than it usually does.
    Needs a few runs of history per account before it judges."""
    t = _tables()
    watch = BalanceWatch._meta.db_table
    factor, floor = settings.RISK_SWING_FACTOR, settings.RISK_SWING_MIN_AMOUNT
    sql = (
        f"SELECT a.id, w.last_balance, a.balance, w.typical_change FROM {t['account']} a "  # noqa: S608
        f"JOIN {watch} w ON w.ledger_account_id = a.id "
        "WHERE w.runs >= 3 AND ABS(a.balance - w.last_balance) > "
        "CASE WHEN w.typical_change * %s > %s THEN w.typical_change * %s ELSE %s END"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [factor, floor, factor, floor])
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in cursor.fetchall()]


def balance_watch_advance() -> None:
    """Remembers every account's balance for the next run's swing check; the
    typical change is a moving average (7/8 old, 1/8 new) of the changes
    seen. One statement."""
    t = _tables()
    watch = BalanceWatch._meta.db_table
    sql = (
        f"INSERT INTO {watch} (ledger_account_id, last_balance, typical_change, runs, updated_at) "  # noqa: S608
        f"SELECT a.id, a.balance, 0, 1, %s FROM {t['account']} a WHERE 1 = 1 "
        "ON CONFLICT (ledger_account_id) DO UPDATE SET "
        f"typical_change = ({watch}.typical_change * 7 + ABS(excluded.last_balance - {watch}.last_balance)) / 8, "
        f"last_balance = excluded.last_balance, runs = {watch}.runs + 1, updated_at = excluded.updated_at"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [timezone.now()])


def _freeze(account_id: int, reason: str) -> bool:
    account = LedgerAccount.objects.filter(pk=account_id).first()
    if account is None or account.frozen:
        return False
    ledger_account_freeze(
        account=account, frozen=True, reason=reason, actor="system:risk-balance-monitor"
    )
    return True


def _drift_case(
    account_id: int, *, title: str, detail: dict[str, Any], merchant_id: int | None
) -> None:
    if RiskCase.objects.filter(
        kind=RiskCase.Kind.BALANCE_DRIFT,
        ledger_account_id=account_id,
        status__in=RiskCase.OPEN_STATUSES,
    ).exists():
        return
    risk_case_open(
        kind=RiskCase.Kind.BALANCE_DRIFT,
        title=title,
        ledger_account_id=account_id,
        merchant=Merchant.objects.filter(pk=merchant_id).first() if merchant_id else None,
        detail=detail,
        actor="system:risk-balance-monitor",
    )


def ledger_balance_monitor_run() -> MonitorRun:
    """One monitoring run. Findings: drift (cached balance ≠ postings: freeze,
    case, critical alert), a currency's ledger not summing to zero (critical
    alert), a negative customer balance (freeze, case, critical alert), a
    sudden swing (warning alert)."""
    started = time.perf_counter()
    run = MonitorRun.objects.create(name=BALANCE_MONITOR)
    findings: list[dict[str, Any]] = []
    owners = {}

    drifts, sums = ledger_scan()
    negatives = negative_balances()
    swings = balance_swings()
    ids = {d[0] for d in drifts} | {n[0] for n in negatives} | {s[0] for s in swings}
    if ids:
        owners = {
            a["id"]: a
            for a in LedgerAccount.objects.filter(id__in=ids).values(
                "id", "merchant_id", "public_id", "kind"
            )
        }

    for account_id, public_id, kind, cached, total in drifts:
        detail = {
            "account": public_id,
            "kind": kind,
            "cached_balance": cached,
            "postings_sum": total,
            "difference": cached - total,
        }
        findings.append({"check": "drift", **detail})
        frozen = _freeze(account_id, f"balance drift: cached {cached}, postings {total}")
        merchant_id = owners.get(account_id, {}).get("merchant_id")
        _drift_case(
            account_id,
            title=f"Balance drift on {kind} account {public_id}",
            detail=detail,
            merchant_id=merchant_id,
        )
        alert_raise(
            kind="balance_drift",
            severity="critical",
            title=f"Balance drift: {kind} account {public_id} caches {cached}, postings sum to {total}",
            detail={**detail, "frozen_now": frozen},
            dedup_key=f"balance_drift:{account_id}",
        )
    for currency, total in sums:
        findings.append({"check": "ledger_sum", "currency": currency, "sum": total})
        alert_raise(
            kind="ledger_not_zero",
            severity="critical",
            title=f"The {currency} ledger does not sum to zero (off by {total})",
            detail={"currency": currency, "sum": total},
            dedup_key=f"ledger_not_zero:{currency}",
        )
    for account_id, public_id, kind, balance in negatives:
        findings.append(
            {"check": "negative", "account": public_id, "kind": kind, "balance": balance}
        )
        frozen = _freeze(account_id, f"negative balance {balance}")
        merchant_id = owners.get(account_id, {}).get("merchant_id")
        _drift_case(
            account_id,
            title=f"Negative balance on {kind} account {public_id}",
            detail={"balance": balance},
            merchant_id=merchant_id,
        )
        alert_raise(
            kind="negative_balance",
            severity="critical",
            title=f"Negative balance: {kind} account {public_id} at {balance}",
            detail={"account": public_id, "kind": kind, "balance": balance, "frozen_now": frozen},
            dedup_key=f"negative_balance:{account_id}",
        )
    for account_id, before, now_balance, typical in swings:
        info = owners.get(account_id, {})
        public_id = str(info.get("public_id", account_id))
        findings.append(
            {
                "check": "swing",
                "account": public_id,
                "before": before,
                "after": now_balance,
                "typical_change": typical,
            }
        )
        alert_raise(
            kind="balance_swing",
            severity="warning",
            title=f"Sudden balance swing on {info.get('kind', '')} account {public_id}: {before} → {now_balance}",
            detail={
                "account": public_id,
                "before": before,
                "after": now_balance,
                "typical_change": typical,
            },
            dedup_key=f"balance_swing:{account_id}:{timezone.now():%Y%m%d%H}",
        )
    with transaction.atomic():
        balance_watch_advance()
    run.finished_at = timezone.now()
    run.ok = not findings
    run.findings = findings[:200]
    run.stats = {
        "seconds": round(time.perf_counter() - started, 3),
        "drifts": len(drifts),
        "ledger_sums": len(sums),
        "negatives": len(negatives),
        "swings": len(swings),
    }
    run.save(update_fields=["finished_at", "ok", "findings", "stats"])
    ScheduledRun.record(BALANCE_MONITOR)
    return run
