"""Serving: SavedModel export in TF Serving's layout."""
