"""Application services: the backends, composed from ports.

They read and write local files with pathlib (this machine's disk is where
the user's repo lives); everything else goes through the ports they are given.
"""
