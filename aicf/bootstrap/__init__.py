"""The composition root: the only package that picks a backend, a chain, a clock and a config and wires them.

One function per running shape, each from a config object:
- `coordinator.build_coordinator(CoordinatorConfig, store=, clock=, chain_writer=)`: the coordinator every shape
  runs (`aicf up`, a replica, the test harnesses);
- `system.build_system(store, params, SystemConfig)`: the node `aicf up` serves (devnet, coordinator, API);
- `up.start_up(UpConfig, say)`: `aicf up` itself, start-up checks first;
- `stores.open_store(url)` and `scenario.run_scenario(...)`: the `aicf db` and `aicf devnet` commands.
The replica harness (`aicf.devtools.replica`) builds its coordinator through `build_coordinator` too.
"""
