"""Redis key names, by the roles `spec.py` gives them. Each owner's keys share a hash tag, so
one function call touches one slot."""

from __future__ import annotations

from streams.state import spec


def account_tag(account_id: str) -> str:
    """The hash-tagged prefix of every key of one account."""
    return f"fw:{{a:{account_id}}}"


def account_keys(account_id: str) -> dict[str, str]:
    """The account's windows and meta keys, by role."""
    tag = account_tag(account_id)
    return {"windows": f"{tag}:w", "meta": f"{tag}:m"}


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
    """Payer accounts seen on the entity, scored by last time seen (and its marker)."""
    return f"{entity_tag(kind, pseudonym)}:w"


def entity_facts_key(kind: str, pseudonym: str, transfer_id: str) -> str:
    """Where the entity keeps the count it computed for one transfer."""
    return f"{entity_tag(kind, pseudonym)}:f:{transfer_id}"


def transfer_record_key(transfer_id: str) -> str:
    """Who paid whom, when and how much, by transfer id (the starting point of a trace)."""
    return f"fw:tx:{{{transfer_id}}}"


def _check_roles() -> None:
    """Every key role a state function names is a key this module builds."""
    built = {*account_keys("-"), "payer_facts", "payee_facts", "accounts", "entity_facts"}
    for script in spec.SCRIPTS:
        missing = set(script.keys) - built
        if missing:
            raise RuntimeError(f"spec names keys keys.py does not build: {sorted(missing)}")


_check_roles()
