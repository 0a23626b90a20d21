"""segsync CLI: emulate commands."""
