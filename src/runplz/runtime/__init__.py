"""The target side of the remote protocol.

Runs on the backend with only python3 >= 3.10, the shipped runplz package and
its pure-Python needs (attrs, cattrs); never click or dependency-injector.
"""
