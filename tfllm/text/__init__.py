"""Tokenizers: training on the cleaned corpus and loading for training and export."""
