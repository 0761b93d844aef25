"""Rule configuration and lists, cached in each process's memory.

A decision reads no configuration from the database: the snapshot below
holds every RuleConfig layer and every live list entry. A change (saved
through the services or the admin) invalidates this process's snapshot at
once and bumps a generation in the shared cache after commit; other
processes look at that generation at most once a second and reload when it
moved. If the shared cache is down, processes keep their last snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from apps.risk import clock
from apps.risk.context import EffectiveRule
from apps.risk.models import ListEntry, RuleConfig, RuleMode
from apps.risk.rules import RULE_CODES, rule_defaults

logger = logging.getLogger(__name__)

GENERATION_KEY = "risk:config:generation"
CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ListRef:
    public_id: str
    kind: str
    skip_rules: tuple[str, ...]
    expires_at: datetime | None


@dataclass
class ConfigSnapshot:
    generation: str | None
    layers: dict[str, dict[str, Any]]  # rule -> {"default": cfg, "mcc": {..}, "merchant": {..}}
    lists: dict[tuple[str, int], list[ListRef]]
    _effective: dict[tuple[str, int], dict[str, EffectiveRule]] = field(default_factory=dict)

    def effective(self, mcc: str, merchant_id: int) -> dict[str, EffectiveRule]:
        key = (mcc or "", merchant_id)
        found = self._effective.get(key)
        if found is None:
            found = {code: self._merge(code, mcc or "", merchant_id) for code in RULE_CODES}
            self._effective[key] = found
        return found

    def _merge(self, code: str, mcc: str, merchant_id: int) -> EffectiveRule:
        params = rule_defaults(code)
        mode: str = RuleMode.ENABLED
        versions = ["code"]
        layer = self.layers.get(code, {})
        for cfg in (
            layer.get("default"),
            layer.get("mcc", {}).get(mcc),
            layer.get("merchant", {}).get(merchant_id),
        ):
            if cfg is None:
                continue
            params.update(cfg.params or {})
            if cfg.mode:
                mode = cfg.mode
            versions.append(f"{cfg.layer_label}:v{cfg.version}")
        return EffectiveRule(code=code, mode=mode, params=params, version="+".join(versions))

    def list_matches(
        self, subjects: list[tuple[str, int | None]], now: datetime
    ) -> tuple[list[str], list[str]]:
        """(block entry ids that apply, rule codes the allow entries skip)."""
        blocked: list[str] = []
        skips: list[str] = []
        for subject in subjects:
            if subject[1] is None:
                continue
            for ref in self.lists.get((subject[0], int(subject[1])), ()):
                if ref.expires_at is not None and ref.expires_at <= now:
                    continue
                if ref.kind == ListEntry.Kind.BLOCK:
                    blocked.append(f"{subject[0]}:{ref.public_id}")
                else:
                    skips.extend(ref.skip_rules)
        return blocked, skips


_snapshot: ConfigSnapshot | None = None
_checked_at = 0.0
_lock = threading.Lock()


def _shared_generation() -> str | None:
    try:
        return cache.get(GENERATION_KEY)
    except Exception:  # the shared cache is down: keep what we have
        logger.warning("risk config generation unavailable", exc_info=True)
        return _snapshot.generation if _snapshot else None


def _load(generation: str | None) -> ConfigSnapshot:
    layers: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"default": None, "mcc": {}, "merchant": {}}
    )
    for cfg in RuleConfig.objects.all():
        layer = layers[cfg.rule_code]
        if cfg.scope == RuleConfig.Scope.DEFAULT:
            layer["default"] = cfg
        elif cfg.scope == RuleConfig.Scope.MCC:
            layer["mcc"][cfg.mcc] = cfg
        else:
            layer["merchant"][cfg.merchant_id] = cfg
    lists: dict[tuple[str, int], list[ListRef]] = defaultdict(list)
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=clock.risk_now())
    for entry in ListEntry.objects.filter(live, revoked_at__isnull=True).only(
        "public_id", "kind", "subject_type", "subject_id", "skip_rules", "expires_at"
    ):
        lists[(entry.subject_type, entry.subject_id)].append(
            ListRef(
                str(entry.public_id), entry.kind, tuple(entry.skip_rules or ()), entry.expires_at
            )
        )
    return ConfigSnapshot(generation=generation, layers=dict(layers), lists=dict(lists))


def config_snapshot() -> ConfigSnapshot:
    global _snapshot, _checked_at
    now = time.monotonic()
    snapshot = _snapshot
    if snapshot is not None and now - _checked_at < CHECK_INTERVAL_S:
        return snapshot
    generation = _shared_generation()
    with _lock:
        if _snapshot is None or _snapshot.generation != generation:
            _snapshot = _load(generation)
        _checked_at = now
        return _snapshot


def config_invalidate() -> None:
    """Drops this process's snapshot now and, after commit, tells the others."""
    global _snapshot
    _snapshot = None

    def bump() -> None:
        global _snapshot
        _snapshot = None
        try:
            cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.warning("could not publish risk config generation", exc_info=True)

    transaction.on_commit(bump)
