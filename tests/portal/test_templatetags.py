"""The portal's template filters: amounts as ¥1,234.56, ages, status names
in the current language."""

from datetime import timedelta

from django.utils import translation

from apps.core.money import Money
from apps.portal.templatetags.portal import age, money, status_label


def test_money_formats_minor_units_and_money_alike():
    assert money(123456) == "¥1,234.56"
    assert money(Money(-5)) == "-¥0.05"
    assert money(None) == ""


def test_age_is_short_and_translated():
    with translation.override("en"):
        assert age(timedelta(days=1, hours=6, minutes=5)) == "1 d 6 h"
        assert age(timedelta(minutes=7)) == "7 min"
    with translation.override("zh-hans"):
        assert age(timedelta(hours=2, minutes=3)) == "2 小时 3 分钟"


def test_a_stored_status_code_shows_its_translated_name():
    with translation.override("zh-hans"):
        assert status_label("submitted", "review") == "已提交"
        assert status_label("completed", "payment") == "已完成"
        assert status_label("weird", "payment") == "weird"
    with translation.override("en"):
        assert status_label("partially_refunded", "payment") == "partially refunded"
