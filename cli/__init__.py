"""The ``finsimples`` command: ``cli.main`` assembles the app; one module per user's command
group beside it (``cli.data``: ``ingest``, ``lake``, ``feed``; ``cli.models``: ``train``,
``backtest``, ``promote``, ``rollback``, ``models``; ``cli.serving``: ``predict``, ``api-key``;
``cli.flows``: ``flows``; ``cli.stack``: ``stack``; ``cli.deploy``: ``deploy``; ``cli.monitoring``:
``monitor``; ``cli.loadtest``: ``loadtest``), ``cli.console`` their shared output. The top layer:
it may import every package, and none imports it."""
