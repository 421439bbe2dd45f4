"""Small data-structure helpers: boxes and masks, each with its own tests."""
