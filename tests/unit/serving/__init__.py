"""Unit tests of the serving components (cache, rate limits, auth, narrator template)."""
