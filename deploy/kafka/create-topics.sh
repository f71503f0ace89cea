#!/usr/bin/env bash
# Creates fraudwatch's topics (run once by the `kafka-init` compose service; safe to re-run).
#
#   BOOTSTRAP            broker address                    (default kafka:9092)
#   TOPICS               space-separated topic names       (default: transfers accounts alerts transfers.dlq)
#   PARTITIONS           partitions per topic              (FRAUDWATCH_PARTITIONS, default 6)
#   REPLICATION_FACTOR   copies of each partition          (FRAUDWATCH_REPLICATION_FACTOR, default 1; 3 on a 3-broker cluster)
#   MIN_INSYNC_REPLICAS  copies an acks=all write needs    (FRAUDWATCH_MIN_INSYNC_REPLICAS, default 1; 2 on a 3-broker cluster)
#
# An existing topic with fewer partitions than PARTITIONS is widened (Kafka can only add
# partitions, never remove them). Note: adding partitions moves keys (= accounts) to other
# partitions; see deploy/RUNBOOK.md#scaling-workers-and-partitions before doing it live.
set -euo pipefail

BOOTSTRAP="${BOOTSTRAP:-kafka:9092}"
TOPICS="${TOPICS:-transfers accounts alerts transfers.dlq}"
PARTITIONS="${PARTITIONS:-6}"
REPLICATION_FACTOR="${REPLICATION_FACTOR:-1}"
MIN_INSYNC_REPLICAS="${MIN_INSYNC_REPLICAS:-1}"
KT=/opt/kafka/bin/kafka-topics.sh

for topic in ${TOPICS}; do
  "${KT}" --bootstrap-server "${BOOTSTRAP}" --create --if-not-exists \
    --topic "${topic}" \
    --partitions "${PARTITIONS}" \
    --replication-factor "${REPLICATION_FACTOR}" \
    --config "min.insync.replicas=${MIN_INSYNC_REPLICAS}"
  current="$("${KT}" --bootstrap-server "${BOOTSTRAP}" --describe --topic "${topic}" \
    | grep -o 'PartitionCount: *[0-9]*' | grep -o '[0-9]*$')"
  if [ "${current}" -lt "${PARTITIONS}" ]; then
    echo "widening ${topic}: ${current} -> ${PARTITIONS} partitions"
    "${KT}" --bootstrap-server "${BOOTSTRAP}" --alter --topic "${topic}" --partitions "${PARTITIONS}"
  fi
  echo "topic ${topic}: partitions=$(( current > PARTITIONS ? current : PARTITIONS )) rf=${REPLICATION_FACTOR} min.insync.replicas=${MIN_INSYNC_REPLICAS}"
done
