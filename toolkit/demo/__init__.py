"""The built-in example the main job validates: a small GPT on text shipped in the package."""
