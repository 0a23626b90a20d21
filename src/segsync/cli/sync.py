"""segsync CLI: sync commands."""
