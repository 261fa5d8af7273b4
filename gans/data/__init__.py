"""Lightning data modules: real images held in memory as uint8 tensors."""
