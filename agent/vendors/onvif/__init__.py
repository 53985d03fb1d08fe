"""ONVIF Profile S cameras through onvif-zeep-async (ADR 0003); imported lazily (~40 MB RSS)."""
