"""Ratchet watchtower: follows L1, re-executes every batch and disputes wrong roots."""
