"""Figures and multi-page reports drawn from ``numeric.studies`` results (matplotlib only draws here)."""
