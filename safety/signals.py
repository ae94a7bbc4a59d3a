"""A change to the term lists or the policies applies to the next check in
this process at once (other processes within rules.RULES_TTL_SECONDS)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import policies, rules
from .models import Policy, Term


@receiver([post_save, post_delete], sender=Term)
def _terms_changed(**kwargs: object) -> None:
    rules.forget()


@receiver([post_save, post_delete], sender=Policy)
def _policies_changed(**kwargs: object) -> None:
    policies.forget()
