"""Attack suite: one test per hostile input or fault that once worked against phoneprov."""
