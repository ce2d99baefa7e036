"""The offline demo: generated problems and tiny models trained on the spot."""
