"""Use-cases: each reads the clock once, opens one store transaction, calls the core and commits."""
