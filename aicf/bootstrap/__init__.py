"""The composition root: the only package that picks a backend, a chain, a clock and a config and wires them.

One function per running shape, each from a config object:
- `coordinator.build_coordinator(CoordinatorConfig, store=, clock=, chain_writer=)`: the coordinator every shape
  runs (`aicf up`, `aicf serve`, the test harnesses);
- `system.build_system(store, params, SystemConfig)`: the node `aicf up` and `aicf serve` serve (the chain named
  by `SystemConfig.chain`, coordinator, API); `shared_devnet.SharedDevnet` is the devnet every process on one
  database shares;
- `up.start_up(UpConfig, say)`: `aicf up` and `aicf serve` (UpConfig.replica) themselves, start-up checks first;
- `stores.open_store(url)` and `scenario.run_scenario(...)`: the `aicf db` and `aicf devnet` commands.
- `cli.main()`: the `aicf` command (`python -m aicf`): the commands of aicf/transports/cli*.py, built by
  `transports.cli.build_app` from the functions above, plus `aicf up` and `aicf serve`.
The replica harness (benchmarks/replica.py) builds its coordinator through `build_coordinator` too.
"""
