"""Small utilities every runtime layer shares: atomic file writes, progress bars, row normalisation. Imports nothing from the rest of the runtime."""
