"""The ``finsimples`` command: ``cli.main`` builds the app and the settings; one module per
command group beside it (``cli.deploy``: ``stack`` and ``deploy``; ``cli.monitoring``:
``monitor``; ``cli.loadtest``: ``loadtest``). The top layer: it may import every package, and
none imports it."""
