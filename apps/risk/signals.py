"""Hooks other apps connect to.

`hold_resolved` is sent inside the transaction that moved a held payment's
money (release to the merchant, return to the payer, or expiry). The payment
service connects a receiver that sets its Payment's status:

    @receiver(hold_resolved)
    def _payment_hold_resolved(sender, *, payment_public_id, result, case, **kwargs):
        # result: "released" | "returned" | "expired"
        Payment.objects.filter(public_id=payment_public_id).update(status=...)

An exception in a receiver rolls the decision (and the money movement) back.
"""

from django.dispatch import Signal

hold_resolved = Signal()
