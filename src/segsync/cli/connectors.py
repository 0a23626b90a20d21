"""segsync CLI: connectors commands."""
