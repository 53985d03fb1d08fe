"""Compliance reports in the shape provincial progress reports take (CSV and PDF, vi and en)."""
