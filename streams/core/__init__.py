"""What every part of driftradar shares: the error tree and the settings every process reads.

``producers`` and ``streams`` both import this package; it imports neither the engine nor
the runner (so that the retrain worker never pulls them in).
"""
