"""Parts every area shares (the bottom layer): no module here imports an area."""
