"""One module per model (mib, pvae, cva, cem, m3d and baselines), registered by name in MODELS."""

# name -> model class; filled as models land. A plain dict: no dynamic imports.
MODELS: dict[str, type] = {}
