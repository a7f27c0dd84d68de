"""The REST façade: the API contract mapped onto MediaAsset custom resources."""
