"""Adapters: the ports implemented over real tools, and the shipped fakes."""
