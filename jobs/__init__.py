"""Jobs: what the CLI commands and the Prefect flows run. Each wires the lake, the pure
training core and the registry together; none holds logic of its own beyond the wiring."""
