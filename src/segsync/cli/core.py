"""segsync CLI: core commands."""
