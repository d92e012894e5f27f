"""Grafana dashboards and datasources of fraudpipeline, as code."""
