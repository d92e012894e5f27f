"""The local run: one FraudPipeline end to end on one machine, with a live view and a report."""
