"""segsync connector for hubspot (work in progress)."""
