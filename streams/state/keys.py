"""Redis key names. Each owner's keys share a hash tag, so one script touches one slot."""

from __future__ import annotations


def account_tag(account_id: str) -> str:
    """The hash-tagged prefix of every key of one account."""
    return f"fw:{{a:{account_id}}}"


def account_keys(account_id: str) -> dict[str, str]:
    """The account's window and profile keys, by role."""
    tag = account_tag(account_id)
    return {
        "out": f"{tag}:out",
        "in": f"{tag}:in",
        "payees": f"{tag}:payees",
        "payers": f"{tag}:payers",
        "payees_last": f"{tag}:payees_last",
        "payers_last": f"{tag}:payers_last",
        "out_amount": f"{tag}:out_amt",
        "in_amount": f"{tag}:in_amt",
        "devices": f"{tag}:dev",
        "phones": f"{tag}:phone",
        "ips": f"{tag}:ip",
        "identifiers": f"{tag}:ids",
        "meta": f"{tag}:meta",
    }


def payer_facts_key(account_id: str, transfer_id: str) -> str:
    """Where the payer side keeps the facts it computed for one transfer."""
    return f"{account_tag(account_id)}:pf:{transfer_id}"


def payee_facts_key(account_id: str, transfer_id: str) -> str:
    """Where the payee side keeps the facts it computed for one transfer."""
    return f"{account_tag(account_id)}:qf:{transfer_id}"


def entity_tag(kind: str, pseudonym: str) -> str:
    """The hash-tagged prefix of a device's, phone's or IP's keys (pseudonymised)."""
    return f"fw:{{e:{kind}:{pseudonym}}}"


def entity_accounts_key(kind: str, pseudonym: str) -> str:
    """Payer accounts seen on the entity, scored by last time seen."""
    return f"{entity_tag(kind, pseudonym)}:accts"


def entity_facts_key(kind: str, pseudonym: str, transfer_id: str) -> str:
    """Where the entity keeps the count it computed for one transfer."""
    return f"{entity_tag(kind, pseudonym)}:f:{transfer_id}"


def transfer_record_key(transfer_id: str) -> str:
    """Who paid whom, when and how much, by transfer id (the starting point of a trace)."""
    return f"fw:tx:{{{transfer_id}}}"


# When observation began (the first event time applied), set once. Its own slot: the
# per-account scripts never read it (one script, one slot); the batch's pipeline sets and
# reads it, and feature derivation applies it.
OBSERVED_SINCE_KEY = "fw:observed_since"
