"""operator/fraud_operator"""
