"""ListOffsets(LATEST) against the fetch high-water mark, after batches of several records.

Usage: python repro_list_offsets_latest.py HOST:PORT. Prints both after each batch and PASS
when they agree every time (exit 0), FAIL otherwise (exit 1). Needs only kafka-python.
"""

from __future__ import annotations

import sys
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic


def main(bootstrap: str) -> int:
    topic = f"list-offsets-{uuid.uuid4().hex[:8]}"
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    tp, agree = TopicPartition(topic, 0), True
    for size in (5, 3, 1, 4):
        for _ in range(size):
            producer.send(topic, b"x")
        producer.flush()  # one batch of `size` records
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        latest = consumer.end_offsets([tp])[tp]
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        consumer.poll(timeout_ms=1000)  # an empty fetch reports the high-water mark
        highwater = consumer.highwater(tp)
        consumer.close()
        agree &= latest == highwater
        print(f"batch of {size}: ListOffsets(LATEST) {latest}, fetch high-water {highwater}")
    producer.close()
    print("PASS" if agree else "FAIL")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
