"""The accounts LakeCircle manages when one service serves many (``LCC_ACCOUNTS``).

An account is reached through its own assumed role; this module holds the value that says
which account and which role, and nothing that does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Account:
    """One managed account: its 12-digit ID, the role assumed in it, and its tags."""

    id: str
    """The 12-digit account ID, as a string (leading zeros are part of it)."""
    role_arn: str
    """The IAM role LakeCircle assumes in the account."""
    external_id: str | None = None
    """The ExternalId the role's trust policy asks for; a secret: never logged."""
    tags: tuple[tuple[str, str], ...] = ()
    """The account's tags (accounts file ``Tags``, or Organizations' tags) as sorted pairs."""
