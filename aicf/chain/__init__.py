"""Chain views (SPEC §10): one interface, the embedded devnet behind it."""
