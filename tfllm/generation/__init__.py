"""Text generation with the GPT decoder's key/value cache."""
