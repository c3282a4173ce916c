"""The transaction simulator (Fraud Detection Handbook design), its publisher and label delivery."""
