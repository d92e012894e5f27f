"""Grafana dashboards of fraudpipeline, as code."""
