"""Development scripts: the docs site's hooks, its samples, and the lower-bounds install."""
