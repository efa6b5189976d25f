"""Entities and the rules of the contract. Pure Python: no storage, no HTTP."""
