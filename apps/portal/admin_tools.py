"""Helpers for compliance's admin list pages over the biggest tables
(payments, journal entries, audit records, risk decisions)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Beyond this many matching rows a list page stops counting: compliance
# narrows the list with a filter or search instead of paging that far.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts a filtered change list only up to COUNT_CAP (+1, so "more
    than" is visible): COUNT(*) over millions of rows costs seconds, a
    LIMITed sub-select costs the cap at most. Use with
    `show_full_result_count = False` (which skips the unfiltered count)."""

    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()


class ReadOnlyAdminMixin:
    """An admin for records nobody edits there (ledger, payments, audit,
    risk decisions): view only, and list pages that never count a whole
    big table."""

    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
