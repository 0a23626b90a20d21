"""segsync connector for mailchimp (work in progress)."""
