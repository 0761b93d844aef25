"""Compliance's admin list pages stay fast at millions of rows: no full
table count (and on the biggest tables not even a full count of a filtered
list), and no foreign key rendered as a <select> of every row (raw id or
autocomplete instead)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models

pytestmark = pytest.mark.django_db

# Our apps: Django's own (auth groups) and django-otp's are small tables.
OURS = ("accounts", "audit", "terminals", "transactions", "risk", "backups", "core")


def _our_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in OURS
    ]


def test_no_list_page_counts_the_whole_table():
    counting = [
        model._meta.label for model, ma in _our_admins() if ma.show_full_result_count is not False
    ]
    assert counting == []


def test_no_change_form_lists_every_row_of_a_foreign_key(rf, compliance):
    """Every editable foreign key of a change form is a raw id or an
    autocomplete, or read-only: a <select> would load the whole table."""
    request = rf.get("/")
    request.user = compliance
    offenders = []
    for model, model_admin in _our_admins():
        if not model_admin.has_change_permission(request) and not model_admin.has_add_permission(
            request
        ):
            continue  # read-only everywhere: no form, no <select>
        readonly = set(model_admin.get_readonly_fields(request))
        excluded = set(model_admin.exclude or ())
        fast = set(model_admin.raw_id_fields) | set(model_admin.autocomplete_fields)
        names = [f.name for f in model._meta.get_fields() if hasattr(f, "editable")]
        for name in names:
            if name in readonly or name in fast or name in excluded:
                continue
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:  # a form-only field
                continue
            if (
                isinstance(field, (models.ForeignKey, models.ManyToManyField))
                and field.editable
                and field.related_model._meta.app_label in OURS
            ):
                offenders.append(f"{model._meta.label}.{name}")
    assert offenders == []


def test_a_capped_paginator_never_counts_past_its_cap(merchant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.audit.models import AuditRecord
    from apps.audit.services import audit_record
    from apps.portal.admin_tools import CappedCountPaginator

    for i in range(8):
        audit_record(action="test.row", merchant=merchant, data={"i": i})
    paginator = CappedCountPaginator(AuditRecord.objects.order_by("-pk"), 2)
    paginator.cap = 5
    with CaptureQueriesContext(connection) as queries:
        assert paginator.count == 6  # "more than 5"
    assert "LIMIT 6" in queries.captured_queries[0]["sql"]
    assert paginator.num_pages == 3


def test_the_audit_filters_offer_recent_values_without_reading_every_row(
    client, compliance, merchant
):
    """Django's filter for a free-text column is a SELECT DISTINCT over the
    whole table on every page view; ours offers the newest rows' values."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from apps.audit.services import audit_record
    from tests.accounts.helpers import otp_force_login

    for action in ("test.alpha", "test.beta", "test.beta"):
        audit_record(action=action, merchant=merchant, data={})
    otp_force_login(client, compliance)
    url = reverse("admin:audit_auditrecord_changelist")
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    assert "?action=test.alpha" in page
    assert "?action=test.beta" in page
    distinct_actions = [
        q["sql"]
        for q in queries.captured_queries
        if "DISTINCT" in q["sql"] and "action" in q["sql"]
    ]
    assert distinct_actions == []
    filtered = client.get(url, {"action": "test.alpha"}).content.decode()
    table = filtered[filtered.index('id="result_list"') :]
    rows = table[table.index("<tbody>") : table.index("</tbody>")]
    assert rows.count('field-action">test.alpha<') == 1
    assert "test.beta" not in rows


def test_the_records_nobody_edits_are_view_only_in_the_admin(rf, compliance):
    """Ledger, payments, audit, risk decisions and terminals: compliance reads
    them in the admin and changes them only through audited services."""
    from apps.portal.admin_tools import ReadOnlyAdminMixin

    request = rf.get("/")
    request.user = compliance
    read_only = [(model, ma) for model, ma in _our_admins() if isinstance(ma, ReadOnlyAdminMixin)]
    labels = {model._meta.label for model, _ma in read_only}
    assert {"transactions.Payment", "audit.AuditRecord", "terminals.Terminal"} <= labels
    for model, model_admin in read_only:
        assert model_admin.has_view_permission(request), model._meta.label
        assert not model_admin.has_add_permission(request), model._meta.label
        assert not model_admin.has_delete_permission(request), model._meta.label
        if model_admin.has_change_permission(request):
            # only for actions that call services (alerts: acknowledge,
            # resolve): no field can be edited
            readonly = set(model_admin.get_readonly_fields(request))
            assert {f.name for f in model._meta.fields} <= readonly, model._meta.label
