"""jobs/fraud_detection"""
