"""The daemon: its loops (poll, watchdog, reconciler, lease, drop folder) and the wiring that runs them."""
