"""Serving components against real redis-server and the fake OpenAI HTTP server."""
