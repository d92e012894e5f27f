"""Real components on 127.0.0.1 for tests, benchmarks and the local run."""
