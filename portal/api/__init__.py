"""JSON API v1 (/api/v1, Bearer API keys, OpenAPI document) and the API keys page."""
