"""Test-only helpers: throwaway daemons and the real-parts policy. Not shipped."""
