"""Per-model mappings from official checkpoint names and layouts to our MLX modules."""
