"""Harnesses for development, demos and benchmarks; the product never imports them (tests/test_architecture.py).

The one exception is `aicf up` (aicf.bootstrap.up): its embedded defaults include the reference providers
(`providers.start_reference_providers`) and a demo load (`demo.DemoRequesters`), so it starts them from here.
The replica harness is a benchmark tool outside the package (benchmarks/replica.py, docs/REPLICAS.md); the
product's replica is `aicf serve` (docs/DEPLOY.md).
"""
