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


def entity_tag(kind: str, pseudonym: str) -> str:
    """The hash-tagged prefix of a device's, phone's or IP's keys (pseudonymised)."""
    return f"fw:{{e:{kind}:{pseudonym}}}"


def entity_accounts_key(kind: str, pseudonym: str) -> str:
    """The entity's sorted set: payer accounts by last time seen, its marker and its
    per-transfer facts (see `spec.ENTITY_ACCOUNT`)."""
    return f"{entity_tag(kind, pseudonym)}:w"


def transfer_record_key(transfer_id: str) -> str:
    """Who paid whom, when and how much, by transfer id (the starting point of a trace)."""
    return f"fw:tx:{{{transfer_id}}}"


# When observation began and began again (`streams/state/observation.py`).
OBSERVED_SINCE_KEY = spec.OBSERVED_SINCE


def _check_names() -> None:
    """Every key role a state function names is a key this module builds, under the names
    the state functions and their encoders assume (`<tag>:w`, `<tag>:m`)."""
    built = {*account_keys("-"), "accounts", "observation"}
    for script in spec.SCRIPTS:
        missing = set(script.keys) - built
        if missing:
            raise RuntimeError(f"spec names keys keys.py does not build: {sorted(missing)}")
    tag = account_tag("-")
    if account_keys("-") != {"windows": f"{tag}:w", "meta": f"{tag}:m"}:
        raise RuntimeError("account keys are not named as the state functions expect")


_check_names()
