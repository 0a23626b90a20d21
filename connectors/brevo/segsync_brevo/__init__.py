"""segsync connector for brevo (work in progress)."""
