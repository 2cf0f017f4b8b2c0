"""DIRAC's Framework System: here only its client side, ``gLogger``."""
