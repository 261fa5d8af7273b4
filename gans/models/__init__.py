"""LightningModules, one file per model; `base.AdversarialModule` holds the shared mechanics."""
