"""Figures and reports drawn from numeric results (matplotlib; a later issue)."""
