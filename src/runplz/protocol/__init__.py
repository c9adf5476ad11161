"""The wire format of the remote protocol (JSON via a private cattrs converter)."""
