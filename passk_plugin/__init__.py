"""passk: Pass@k evaluation and WiSE-FT merge sweeps."""
