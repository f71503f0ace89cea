"""The throughput, latency, resource and correctness benchmark: `python -m loadtest`."""
