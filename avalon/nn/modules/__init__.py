"""Layers, one file per family (linear, activation, container, conv …); `avalon.nn` re-exports them."""
