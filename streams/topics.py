"""Creating fraudwatch's topics: idempotent, and ready to use when it returns."""

from __future__ import annotations

from collections.abc import Sequence

from kafka import KafkaAdminClient
from kafka.errors import NoError, TopicAlreadyExistsError, for_code


def ensure_topics(
    bootstrap: str,
    names: Sequence[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout_ms: int = 10000,
) -> None:
    """Create each topic with `partitions` partitions unless it exists; wait until all are usable.

    An existing topic is left as it is, whatever its partition count.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="fraudwatch-admin")
    try:
        spec = {"num_partitions": partitions, "replication_factor": replication_factor}
        response = admin.create_topics(
            {name: spec for name in names}, timeout_ms=timeout_ms, raise_errors=False
        )
        for topic in response["topics"]:
            error = for_code(topic["error_code"])
            if error not in (NoError, TopicAlreadyExistsError):
                raise error(f"creating topic {topic['name']!r}: {topic['error_message']}")
        # Producers and consumers need each topic's partitions to have leaders in metadata.
        admin.wait_for_topics(list(names), timeout_ms=timeout_ms)
    finally:
        admin.close()
