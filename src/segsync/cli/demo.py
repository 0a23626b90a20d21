"""segsync CLI: demo commands."""
