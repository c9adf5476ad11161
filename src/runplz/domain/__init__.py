"""Pure logic: specs, the Image DSL and its renderers, run plans, errors.

Nothing in this package performs I/O, reads the environment or the clock, or
imports a framework; the services feed it data and act on its answers.
"""
