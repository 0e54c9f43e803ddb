"""The client's tools made the model's own: the per-request MCP endpoint and the tool-use rules."""
