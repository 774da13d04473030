"""Simulated hardware for tests, swapped in at the vendor-library boundary."""
