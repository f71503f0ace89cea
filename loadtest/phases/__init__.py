"""The benchmark's phases: raw read, pipeline throughput, latency at an offered rate."""
