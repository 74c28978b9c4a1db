"""The settings' sub-models: pure pydantic, importing nothing of the project.

``finsimples.settings.Settings`` embeds them (``FINSIMPLES_STACK__<FIELD>``, ``..._LOADTEST__``,
``..._DRIFT__``, ``..._SLO__``, ``..._ALERTS__``, ``..._GATE__``), and every layer may import
them, so the settings object depends on no package above it. The training models' settings
(``training/config.py``) live with the pure training code, the lowest layer after this one.
"""
