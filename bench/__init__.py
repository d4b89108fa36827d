"""``make bench``: hcp's speed against the thinnest possible intake, measured in one run."""
