"""Data: Beam preprocessing transforms, the TFRecord schema, and tf.data readers."""
