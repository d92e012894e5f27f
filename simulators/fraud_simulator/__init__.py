"""simulators/fraud_simulator"""
