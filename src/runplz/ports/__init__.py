"""Typed ports: what the services need from the outside world, as Protocols.

Each port's docstring is its contract; `contract_tests/` runs one suite per
port against every adapter and its fake.
"""
