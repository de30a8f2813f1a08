"""Visualisation helpers. The image grids live in ``ebtvision.engine.hooks``; MMEngine's
``Visualizer`` with its ``LocalVisBackend`` / ``TensorboardVisBackend`` draws them."""
